// RobotOrchestra web page: lobby, the match you play, history. Plain JS, no build step.
// State comes from `GET /matches/{id}/view` (with the player's token); live updates from the
// WebSocket `/matches/{id}/live?after=<sequence>` — an event makes the page fetch the view
// again (no polling), a dropped socket reconnects with backoff from the last sequence seen.
'use strict';
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const enc = encodeURIComponent;

  // Test and debugging hooks: the last sequence seen and how often the socket reconnected.
  const debug = (window.orchestra = { lastSequence: 0, reconnects: 0, viewFetches: 0 });

  /** Builds an element; text children are text nodes (never parsed as HTML). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  /** Replaces `el`'s children (arrays flattened; null, undefined and false skipped). */
  function fill(el, ...children) {
    el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
      .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
    return el;
  }

  const store = {
    get(k) { try { return localStorage.getItem(k); } catch (_) { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch (_) { /* private mode */ } },
  };

  function randomId() {
    if (window.crypto && crypto.getRandomValues) {
      const b = new Uint8Array(12);
      crypto.getRandomValues(b);
      return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    }
    return Math.random().toString(16).slice(2) + Date.now().toString(16);
  }

  /** This browser's player: a stable id and the last name typed. */
  function me() {
    let id = store.get('orchestra.playerId');
    if (!id) {
      id = 'web-' + randomId();
      store.set('orchestra.playerId', id);
    }
    return { playerId: id, name: store.get('orchestra.name') || '' };
  }

  /** `{playerId, token}` of this browser in match `id`, if it has a seat there. */
  function seatOf(id) {
    try { return JSON.parse(store.get('orchestra.seat.' + id) || 'null'); } catch (_) { return null; }
  }
  function keepSeat(id, playerId, token) {
    store.set('orchestra.seat.' + id, JSON.stringify({ playerId, token }));
  }

  async function api(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    const r = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((data && data.error) || `${r.status} ${r.statusText}`);
      e.status = r.status;
      throw e;
    }
    return data;
  }

  const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '');
  const fmtSecs = (ms) => {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  };
  const matchLink = (id) => `${location.origin}${location.pathname}#/match/${enc(id)}`;
  const sortedSeats = (scores) => Object.keys(scores || {}).sort();

  // ---------------------------------------------------------------- routing
  let active = null; // the current view's controller ({stop()})

  function route() {
    if (active && active.stop) active.stop();
    active = null;
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    const app = $('#app');
    fill(app);
    const page = parts[0] || 'lobby';
    for (const [navId, name] of [['nav-lobby', 'lobby'], ['nav-history', 'history']]) {
      const a = document.getElementById(navId);
      if (name === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (page === 'match' && parts[1]) active = matchPage(app, parts[1]);
    else if (page === 'history' && parts[1]) historyRecord(app, parts[1]);
    else if (page === 'history') historyList(app);
    else lobby(app);
  }

  // ---------------------------------------------------------------- lobby
  function lobby(app) {
    const who = me();
    const error = h('p', { id: 'lobby-error', class: 'error', role: 'alert' });
    const name = h('input', {
      id: 'name', name: 'name', type: 'text', autocomplete: 'nickname', maxlength: 64,
      placeholder: 'e.g. Ada', value: who.name,
    });
    const template = h('select', { id: 'template', name: 'template' },
      h('option', { value: 'classic_1v3' }, 'classic_1v3 — 1 human, 3 robots'));
    const rounds = h('input', { id: 'rounds', name: 'rounds', type: 'number', min: 1, max: 20, value: 3 });
    const respSecs = h('input', { id: 'response-secs', name: 'responseSecs', type: 'number', min: 5, max: 600, value: 45 });
    const voteSecs = h('input', { id: 'voting-secs', name: 'votingSecs', type: 'number', min: 5, max: 600, value: 30 });
    const joinLink = h('input', {
      id: 'join-link', name: 'link', type: 'text', placeholder: 'paste a match link or id',
      autocomplete: 'off',
    });

    api('GET', '/web/templates').then((list) => {
      const current = template.value;
      fill(template, ...list.map((t) => h('option', { value: t.name },
        `${t.name} — ${t.humans} human${t.humans === 1 ? '' : 's'}, ${t.robots} robot${t.robots === 1 ? '' : 's'}`)));
      template.value = current;
    }).catch(() => { /* the default option stays */ });

    function playerName() {
      const n = name.value.trim();
      if (n) store.set('orchestra.name', n);
      return n;
    }

    async function create(body, button) {
      error.textContent = '';
      const n = playerName() || 'Player';
      const player = me();
      button.disabled = true;
      try {
        const res = await api('POST', '/matches', {
          ...body, humans: [{ playerId: player.playerId, name: n }],
        });
        keepSeat(res.matchId, player.playerId, res.playerTokens[player.playerId]);
        location.hash = '#/match/' + enc(res.matchId);
      } catch (e) {
        error.textContent = 'Could not create the match: ' + e.message;
        button.disabled = false;
      }
    }

    const createButton = h('button', { id: 'create', type: 'submit' }, 'Create match');
    const createForm = h('form', {
      id: 'create-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        const secs = (input, fallback) => Math.round((Number(input.value) || fallback) * 1000);
        create({
          template: template.value,
          totalRounds: Number(rounds.value) || 3,
          responseWindowMs: secs(respSecs, 45),
          votingWindowMs: secs(voteSecs, 30),
        }, createButton);
      },
    },
    h('h2', {}, 'Create a match'),
    h('label', { for: 'template' }, 'Template'), template,
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'rounds' }, 'Rounds'), rounds),
      h('div', {}, h('label', { for: 'response-secs' }, 'Seconds to answer'), respSecs),
      h('div', {}, h('label', { for: 'voting-secs' }, 'Seconds to vote'), voteSecs)),
    h('p', { class: 'hint' }, 'You take a human seat; share the link so the other humans can join. Robots fill the robot seats.'),
    createButton);

    const playNow = h('button', {
      id: 'play-now', type: 'button',
      onclick: () => create({
        template: 'classic_1v3', totalRounds: 3, responseWindowMs: 30000, votingWindowMs: 20000,
      }, playNow),
    }, 'Play now');

    const joinForm = h('form', {
      id: 'join-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        const v = joinLink.value.trim();
        const m = v.match(/#\/match\/([^/?#\s]+)/);
        const id = m ? decodeURIComponent(m[1]) : v;
        if (!id || /\s/.test(id)) {
          error.textContent = 'Paste the link someone shared (…/#/match/<id>) or a match id.';
          return;
        }
        playerName();
        location.hash = '#/match/' + enc(id);
      },
    },
    h('h2', {}, 'Join a match'),
    h('label', { for: 'join-link' }, 'Match link'),
    h('div', { class: 'row' }, joinLink, h('button', { id: 'join', type: 'submit' }, 'Join')));

    app.append(
      h('h1', { id: 'lobby-title' }, 'Who is human?'),
      h('p', {}, 'Answer each prompt like yourself, then vote for the seat you believe is the other human. The robots try to pass as people.'),
      h('section', { class: 'card' },
        h('label', { for: 'name' }, 'Your name'), name,
        h('p', { class: 'hint' }, 'Play now: a classic match (you and three robots, 3 rounds, 30 s to answer, 20 s to vote).'),
        playNow, error),
      h('section', { class: 'card' }, createForm),
      h('section', { class: 'card' }, joinForm));
    name.focus();
  }

  // ---------------------------------------------------------------- match
  function matchPage(app, id) {
    let seat = seatOf(id);
    let stopped = false;
    let ws = null;
    let backoff = 500;
    const timers = new Set();
    let view = null;
    let viewError = null;
    let lastSeq = 0;
    const rounds = {}; // round number -> round.completed data (points, scores)
    let completed = null; // match.completed data
    let fetching = false;
    let again = false;
    let retry = 0;
    const sent = {}; // round -> 'answer' / 'vote' sent (shown until the view has it)

    const later = (fn, ms) => {
      const t = setTimeout(() => { timers.delete(t); if (!stopped) fn(); }, ms);
      timers.add(t);
    };

    const conn = h('span', { id: 'connection', class: 'badge', 'data-state': 'connecting' }, 'connecting…');
    const head = h('div', { class: 'meta', id: 'match-meta' });
    const share = h('section', { id: 'share', class: 'card', hidden: true });
    const phase = h('p', { id: 'phase', role: 'status' });
    const promptBox = h('section', { id: 'prompt-box', class: 'card', hidden: true });
    const answerArea = h('div', { id: 'answer-area' });
    const answersArea = h('section', { id: 'answers-area', class: 'card', hidden: true });
    const voteArea = h('div', { id: 'vote-area' });
    const results = h('section', { id: 'results', class: 'card', hidden: true });
    const reveal = h('section', { id: 'reveal', class: 'card', hidden: true });
    const scores = h('section', { id: 'scores-area', class: 'card', hidden: true });
    const root = h('section', { id: 'match', 'data-match-id': id },
      h('h1', { id: 'match-title' }, 'Match'), head, phase, share, promptBox, answerArea,
      answersArea, voteArea, results, reveal, scores);
    app.append(root);

    if (seat) start();
    else joinForm();

    function joinForm() {
      const who = me();
      const error = h('p', { class: 'error', role: 'alert' });
      const name = h('input', { id: 'join-name', type: 'text', maxlength: 64, autocomplete: 'nickname', value: who.name });
      const button = h('button', { id: 'join-submit', type: 'submit' }, 'Take a seat');
      const form = h('form', {
        id: 'seat-form', class: 'card',
        onsubmit: async (ev) => {
          ev.preventDefault();
          const n = name.value.trim();
          if (!n) { error.textContent = 'Enter your name.'; name.focus(); return; }
          store.set('orchestra.name', n);
          button.disabled = true;
          try {
            const res = await api('POST', `/matches/${enc(id)}/players`, { playerId: who.playerId, name: n });
            keepSeat(id, who.playerId, res.playerToken);
            seat = seatOf(id);
            form.remove();
            start();
          } catch (e) {
            error.textContent = 'Could not join: ' + e.message;
            button.disabled = false;
          }
        },
      },
      h('h2', {}, 'Join this match'),
      h('label', { for: 'join-name' }, 'Your name'), name, button,
      h('button', { type: 'button', class: 'secondary', id: 'watch', onclick: () => { form.remove(); start(); } }, 'Just watch'),
      error);
      root.insertBefore(form, phase);
      name.focus();
    }

    function start() {
      connect();
      refresh();
      const tick = setInterval(updateCountdown, 250);
      timers.add({ interval: tick });
      render();
    }

    function connect() {
      if (stopped) return;
      setConn('connecting', 'connecting…');
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      let sock;
      try {
        sock = new WebSocket(`${proto}//${location.host}/matches/${enc(id)}/live?after=${lastSeq}`);
      } catch (_) {
        reconnect();
        return;
      }
      ws = sock;
      sock.onopen = () => {
        backoff = 500;
        setConn('live', 'live');
        refresh(); // catch up on what happened while the socket was down
      };
      sock.onmessage = (m) => {
        let e;
        try { e = JSON.parse(m.data); } catch (_) { return; }
        onEvent(e);
      };
      sock.onclose = () => {
        if (ws !== sock) return;
        ws = null;
        reconnect();
      };
    }

    function reconnect() {
      if (stopped) return;
      debug.reconnects += 1;
      setConn('reconnecting', `reconnecting in ${Math.round(backoff / 100) / 10} s…`);
      later(connect, backoff + Math.random() * 250);
      backoff = Math.min(backoff * 2, 8000);
    }

    function setConn(state, text) {
      conn.dataset.state = state;
      conn.textContent = text;
    }

    function onEvent(e) {
      if (typeof e.sequence === 'number') {
        if (e.sequence <= lastSeq) return; // a copy
        lastSeq = e.sequence;
        debug.lastSequence = lastSeq;
      }
      if (e.eventType === 'round.completed' && e.data) rounds[e.data.round] = e.data;
      if (e.eventType === 'match.completed' && e.data) completed = e.data;
      refresh();
    }

    /** Fetches the view; concurrent calls coalesce into one more fetch. */
    async function refresh() {
      if (stopped) return;
      if (fetching) { again = true; return; }
      fetching = true;
      try {
        do {
          again = false;
          try {
            debug.viewFetches += 1;
            const v = await api('GET', `/matches/${enc(id)}/view`, undefined, seat && seat.token);
            view = v;
            viewError = null;
            // The view is behind the events seen (another task still applying): ask again soon.
            if (typeof v.eventsApplied === 'number' && v.eventsApplied < lastSeq && retry < 20) {
              retry += 1;
              later(refresh, 300);
            } else {
              retry = 0;
            }
          } catch (e) {
            viewError = e;
            // Not created yet, or the worker is (re)starting: try again with backoff.
            retry += 1;
            later(refresh, Math.min(250 * 2 ** Math.min(retry, 5), 5000));
          }
          render();
        } while (again && !stopped);
      } finally {
        fetching = false;
      }
    }

    function deadline() {
      if (!view) return null;
      const c = view.current;
      if (view.status === 'responding' && c) return c.responseDeadline;
      if (view.status === 'voting' && c) return c.votingDeadline;
      if (view.status === 'waiting_for_robots') return view.robotsDeadline;
      return null;
    }

    function updateCountdown() {
      const el = document.getElementById('countdown');
      if (!el) return;
      const d = deadline();
      if (!d) { el.textContent = ''; return; }
      const left = d - Date.now();
      el.textContent = left > 0 ? `${fmtSecs(left)} left` : "time's up";
      el.classList.toggle('low', left < 10000);
      el.dataset.deadline = String(d);
    }

    /** Replaces `el`'s content only when `key` changed (keeps typing and focus). */
    function keyed(el, key, build) {
      if (el.dataset.key === key) return;
      el.dataset.key = key;
      fill(el, build());
    }

    function render() {
      if (stopped) return;
      root.dataset.status = view ? view.status : 'loading';
      const you = view && view.you;
      $('#match-title').textContent = you ? `You are seat ${you}` : 'Match';
      fill(head,
        you ? h('span', {}, 'Your seat: ', h('span', { class: 'seat', id: 'seat' }, you))
          : h('span', { id: 'seat-none' }, !seat ? 'Watching'
            : view && view.status !== 'waiting_for_players'
              ? 'No seat for you (the match was full or had started): watching'
              : 'Taking your seat…'),
        view ? h('span', { id: 'template-name' }, view.template) : null,
        view && view.round ? h('span', { id: 'round' }, `Round ${view.round} of ${view.totalRounds}`) : null,
        conn);

      if (!view) {
        phase.textContent = viewError && viewError.status !== 404
          ? `Waiting for the match (${viewError.message})…`
          : 'Setting up the match…';
        share.hidden = true;
        return;
      }
      const status = view.status;
      const c = view.current;
      const r = view.round;
      const texts = {
        waiting_for_players: 'Waiting for the other humans to join.',
        waiting_for_robots: `Round ${r}: the robots take their seats…`,
        responding: you ? 'Answer the prompt — like yourself.' : 'The players are answering.',
        voting: you ? 'Voting is open: which of the others is human?' : 'The players are voting.',
        round_completed: `Round ${r} is over.`,
        completed: 'The match is over: the reveal.',
      };
      phase.textContent = texts[status] || status;

      // Share link while seats are free.
      share.hidden = status !== 'waiting_for_players';
      keyed(share, 'share', () => [
        h('label', { for: 'share-link' }, 'Share this link with the other humans'),
        h('div', { class: 'row' },
          h('input', { id: 'share-link', type: 'text', readonly: true, value: matchLink(id), onfocus: (e) => e.target.select() }),
          h('button', {
            type: 'button', class: 'secondary',
            onclick: (e) => {
              const b = e.target;
              navigator.clipboard && navigator.clipboard.writeText(matchLink(id)).then(() => { b.textContent = 'Copied'; }, () => {});
            },
          }, 'Copy')),
      ]);

      // Prompt and countdown.
      const inRound = c && (status === 'responding' || status === 'voting' || status === 'round_completed');
      promptBox.hidden = !inRound;
      if (inRound) {
        keyed(promptBox, `${c.round}`, () => [
          h('p', { class: 'muted' }, `Round ${c.round} prompt`),
          h('p', { class: 'prompt', id: 'prompt' }, c.prompt),
          h('p', { class: 'countdown', id: 'countdown', role: 'timer', 'aria-live': 'off' }),
        ]);
      } else if (status === 'waiting_for_robots') {
        promptBox.hidden = false;
        keyed(promptBox, 'robots', () => h('p', { class: 'countdown', id: 'countdown' }));
      }
      updateCountdown();

      const responses = (c && c.responses) || [];
      const answered = you && (responses.some((x) => x.identity === you) || sent[r] === 'answer');

      // Answer box.
      const canAnswer = status === 'responding' && you && !answered;
      keyed(answerArea, canAnswer ? `answer-${r}` : `none-${r}-${answered ? 'in' : ''}-${status}`, () => {
        if (canAnswer) return answerForm(r);
        if (status === 'responding' && answered) {
          return h('p', { class: 'ok card', id: 'answer-sent' }, 'Your answer is in. Waiting for the others…');
        }
        return null;
      });

      // Answers: live while answering (arrival order), in the match processor's order at voting.
      const showAnswers = c && (status === 'responding' || status === 'voting' || status === 'round_completed');
      answersArea.hidden = !showAnswers;
      if (showAnswers) {
        const seats = view.seats.map((s) => s.identity);
        let list;
        if (status === 'responding') {
          list = responses.map((x) => x.identity);
        } else {
          list = c.presentation && c.presentation.length ? c.presentation : seats;
        }
        const byId = Object.fromEntries(responses.map((x) => [x.identity, x.text]));
        const timedOut = new Set(c.timedOutResponses || []);
        fill(answersArea,
          h('h2', {}, status === 'responding'
            ? `Answers so far (${responses.length} of ${seats.length})`
            : 'The answers'),
          list.length === 0 ? h('p', { class: 'muted' }, 'No answer yet.') : null,
          h('ol', { class: 'answers', id: 'answers' }, list.map((idf) => h('li', { 'data-identity': idf },
            h('span', { class: 'seat' }, idf),
            h('span', { class: 'answer-text' }, idf in byId ? byId[idf] : (timedOut.has(idf) ? '(no answer in time)' : '…'),
              idf === you ? h('span', { class: 'muted' }, ' (you)') : null)))));
      }

      // Vote.
      const votes = (c && c.votes) || [];
      const myVote = you && votes.find((v) => v.voter === you);
      const canVote = status === 'voting' && you && !myVote && sent[r] !== 'vote';
      const voteKey = status === 'voting' ? `vote-${r}-${canVote ? 'open' : (myVote ? myVote.votedFor : 'sent')}` : `none-${status}`;
      keyed(voteArea, voteKey, () => {
        if (status !== 'voting' || !you) return null;
        if (canVote) return voteForm(r, (c.presentation && c.presentation.length ? c.presentation : view.seats.map((s) => s.identity)).filter((x) => x !== you));
        return h('p', { class: 'ok card', id: 'vote-sent' }, myVote ? `You voted for ${myVote.votedFor}. Waiting for the others…` : 'Your vote is in. Waiting for the others…');
      });

      // Points after each round.
      const done = Object.values(rounds).sort((a, b) => a.round - b.round);
      results.hidden = done.length === 0;
      if (done.length) {
        const last = done[done.length - 1];
        fill(results,
          h('h2', {}, 'Points'),
          h('div', { class: 'table-wrap' }, h('table', { id: 'round-points' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Round'), sortedSeats(last.scores).map((s) => h('th', { class: 'num' + (s === you ? ' you' : '') }, s === you ? `${s} (you)` : s)))),
            h('tbody', {}, done.map((d) => h('tr', { 'data-round': d.round },
              h('td', {}, `Round ${d.round}`),
              sortedSeats(last.scores).map((s) => h('td', { class: 'num' }, `+${(d.points || {})[s] || 0}`))))))));
      }

      // Scores.
      scores.hidden = false;
      fill(scores, h('h2', {}, status === 'completed' ? 'Final scores' : 'Scores'),
        h('div', { class: 'table-wrap' }, h('table', { id: 'scores' },
          h('tbody', {}, sortedSeats(view.scores).map((s) => h('tr', { 'data-identity': s, class: s === you ? 'you' : '' },
            h('td', {}, h('span', { class: 'seat' }, s), s === you ? ' you' : ''),
            h('td', { class: 'num' }, String(view.scores[s]))))))));

      // The reveal.
      reveal.hidden = status !== 'completed';
      if (status === 'completed') {
        keyed(reveal, `reveal-${view.eventsApplied}`, () => revealSection(view.seats, (completed && completed.finalScores) || view.scores, you, id));
      }
    }

    function answerForm(round) {
      const error = h('p', { class: 'error', role: 'alert' });
      const text = h('textarea', { id: 'answer', name: 'answer', maxlength: 2000, required: true, 'aria-describedby': 'answer-hint' });
      const button = h('button', { id: 'submit-answer', type: 'submit' }, 'Send answer');
      const form = h('form', {
        id: 'answer-form', class: 'card',
        onsubmit: async (ev) => {
          ev.preventDefault();
          const t = text.value.trim();
          if (!t) { error.textContent = 'Write an answer first.'; text.focus(); return; }
          button.disabled = true;
          error.textContent = '';
          try {
            await api('POST', `/matches/${enc(id)}/responses`, { playerId: seat.playerId, round, text: t }, seat.token);
            sent[round] = 'answer';
            render();
          } catch (e) {
            error.textContent = 'Not sent: ' + e.message;
            button.disabled = false;
          }
        },
      },
      h('label', { for: 'answer' }, 'Your answer'), text,
      h('p', { class: 'hint', id: 'answer-hint' }, 'Enter sends, Shift+Enter for a new line.'),
      button, error);
      text.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          form.requestSubmit();
        }
      });
      setTimeout(() => text.focus(), 0);
      return form;
    }

    function voteForm(round, candidates) {
      const error = h('p', { class: 'error', role: 'alert' });
      const button = h('button', { id: 'submit-vote', type: 'submit' }, 'Vote');
      const form = h('form', {
        id: 'vote-form', class: 'card',
        onsubmit: async (ev) => {
          ev.preventDefault();
          const choice = form.querySelector('input[name=vote]:checked');
          if (!choice) { error.textContent = 'Pick the seat you believe is human.'; return; }
          button.disabled = true;
          error.textContent = '';
          try {
            await api('POST', `/matches/${enc(id)}/votes`, { playerId: seat.playerId, round, votedFor: choice.value }, seat.token);
            sent[round] = 'vote';
            render();
          } catch (e) {
            error.textContent = 'Not sent: ' + e.message;
            button.disabled = false;
          }
        },
      },
      h('fieldset', {},
        h('legend', {}, 'Who is human?'),
        h('div', { class: 'choices' }, candidates.map((idf, i) => h('label', { for: `vote-${idf}` },
          h('input', { type: 'radio', name: 'vote', id: `vote-${idf}`, value: idf, required: i === 0 }),
          h('span', {}, `Seat ${idf}`))))),
      button, error);
      setTimeout(() => { const first = form.querySelector('input[name=vote]'); if (first) first.focus(); }, 0);
      return form;
    }

    return {
      stop() {
        stopped = true;
        for (const t of timers) {
          if (t && t.interval) clearInterval(t.interval);
          else clearTimeout(t);
        }
        timers.clear();
        if (ws) { const s = ws; ws = null; s.close(); }
      },
    };
  }

  /** The reveal: which seats were human, who voiced each robot seat each round, scores. */
  function revealSection(seats, finalScores, you, id) {
    const top = Math.max(...Object.values(finalScores || { x: 0 }));
    return [
      h('h2', {}, 'The reveal'),
      h('ul', { class: 'plain', id: 'reveal-list' }, seats.map((s) => h('li', { 'data-identity': s.identity, 'data-kind': s.kind },
        h('span', { class: 'seat' }, s.identity),
        h('div', {},
          h('div', {},
            h('span', { class: s.kind }, s.kind === 'human' ? 'Human' : 'Robot'),
            s.kind === 'human' && s.name ? ` — ${s.name}` : '',
            s.identity === you ? ' (you)' : '',
            finalScores && s.identity in finalScores ? h('span', { class: 'muted' }, ` · ${finalScores[s.identity]} point${finalScores[s.identity] === 1 ? '' : 's'}${finalScores[s.identity] === top ? ' ★' : ''}`) : ''),
          s.kind === 'robot' && s.voices && s.voices.length
            ? h('ul', { class: 'voices' }, s.voices.map((v) => h('li', { 'data-round': v.round },
              `Round ${v.round}: ${v.personality} (${v.robotId}${v.model ? ', ' + v.model : ''})`)))
            : null)))),
      h('p', {}, h('a', { href: '#/history/' + enc(id), id: 'history-link' }, 'The full record of this match'), ' · ',
        h('a', { href: '#/' }, 'Play again')),
    ];
  }

  // ---------------------------------------------------------------- history
  async function historyList(app) {
    const body = h('div', { id: 'history' }, h('p', { class: 'muted' }, 'Loading…'));
    app.append(h('h1', {}, 'Finished matches'), body);
    try {
      const list = await api('GET', '/matches/history?limit=20');
      if (!list.length) {
        fill(body, h('p', { id: 'history-empty' }, 'No finished match yet.'));
        return;
      }
      fill(body, h('div', { class: 'table-wrap' }, h('table', { id: 'history-list' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Match'), h('th', {}, 'Template'), h('th', {}, 'Humans'), h('th', {}, 'Finished'))),
        h('tbody', {}, list.map((m) => h('tr', { 'data-match-id': m.matchId },
          h('td', {}, h('a', { href: '#/history/' + enc(m.matchId) }, m.matchId.slice(0, 8))),
          h('td', {}, m.template),
          h('td', {}, m.seats.filter((s) => s.kind === 'human').map((s) => s.name || s.identity).join(', ')),
          h('td', {}, fmtTime(m.completedAt))))))));
    } catch (e) {
      fill(body, h('p', { class: 'error', role: 'alert' }, 'Could not load the history: ' + e.message));
    }
  }

  async function historyRecord(app, id) {
    const body = h('div', { id: 'history-record', 'data-match-id': id }, h('p', { class: 'muted' }, 'Loading…'));
    app.append(h('h1', {}, `Match ${id.slice(0, 8)}`), body);
    let m;
    try {
      m = await api('GET', `/matches/history/${enc(id)}`);
    } catch (e) {
      fill(body, h('p', { class: 'error', role: 'alert' },
        e.status === 404 ? 'This match is not in the history (yet): it may still be running.' : 'Could not load it: ' + e.message),
      h('p', {}, h('a', { href: '#/match/' + enc(id) }, 'Open the match')));
      return;
    }
    const kinds = Object.fromEntries(m.seats.map((s) => [s.identity, s]));
    const label = (idf) => {
      const s = kinds[idf];
      return s && s.kind === 'human' ? `${idf} (${s.name || 'human'})` : idf;
    };
    fill(body,
      h('p', { class: 'meta' },
        h('span', {}, m.template), h('span', {}, `${m.rounds.length} round${m.rounds.length === 1 ? '' : 's'}`),
        h('span', {}, fmtTime(m.completedAt)),
        m.durationMs ? h('span', {}, `${Math.round(m.durationMs / 1000)} s`) : null),
      h('section', { class: 'card' }, revealSection(m.seats, m.finalScores, null, id).slice(0, 2)),
      m.rounds.map((r) => h('section', { class: 'card round', 'data-round': r.round },
        h('h2', {}, `Round ${r.round}`),
        h('p', { class: 'prompt' }, r.prompt),
        h('ol', { class: 'answers' }, r.responses.map((x) => h('li', { 'data-identity': x.identity },
          h('span', { class: 'seat' }, x.identity),
          h('span', { class: 'answer-text' }, x.text, ' ', h('span', { class: 'muted' }, `(${x.source})`))))),
        r.timedOutResponses.length ? h('p', { class: 'muted' }, `No answer in time: ${r.timedOutResponses.join(', ')}`) : null,
        h('p', {}, 'Votes: ', r.votes.map((v) => `${label(v.voter)} → ${v.votedFor}`).join(' · ') || 'none'),
        h('p', {}, 'Points: ', sortedSeats(r.points).map((s) => `${s} +${r.points[s]}`).join(' · ')))));
  }

  window.addEventListener('hashchange', route);
  route();
})();
