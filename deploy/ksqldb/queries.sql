-- =====================================================================================
-- RobotOrchestra Streams - ksqlDB streams, tables and persistent queries for analysts
--
-- This file holds DDL and persistent queries only (CREATE ... / CREATE ... AS SELECT):
-- it runs as a script to its end. The transient queries to read the results (push
-- queries never end; pull queries answer once) are in queries_push.sql, to paste into
-- the ksql CLI one at a time.
--
-- Run against the compose stack:
--   docker compose -f deploy/compose/docker-compose.yml --profile analytics up -d
--   docker compose -f deploy/compose/docker-compose.yml exec ksqldb-cli \
--     ksql http://ksqldb:8088 --file /queries/queries.sql
--
-- Notes
-- * Every topic holds plain JSON values with UTF-8 string keys (see deploy/topics.json),
--   so ksqlDB reads them with VALUE_FORMAT='JSON' and no schema registry.
-- * The columns follow the JSON Schemas of the topics (schemas/json/*.schema.json);
--   tests/ksqldb.rs checks that every column and field named here exists there with a
--   matching type. Unquoted identifiers are upper-cased by ksqlDB and JSON fields are
--   matched case-insensitively, so `matchId` reads the JSON field "matchId".
-- * Every time in the documents and events is epoch milliseconds: BIGINT. The streams
--   over match-history and match-stats use them as the record time (TIMESTAMP=...), so
--   windows follow completion time, not the time the record was written; match-events'
--   record time is the event's time already (the runtime sets it).
-- * `data` of match-events is declared VARCHAR: ksqlDB turns the nested JSON object into
--   its text, and EXTRACTJSONFIELD reads any field of any event type from it.
-- * Nothing here writes to the RobotOrchestra topics: every CREATE ... AS SELECT writes
--   to its own new topic (ksql-...).
-- * A compacted topic can hold older copies of a document until compaction runs, and a
--   replay of match-events rewrites identical history documents: streams over
--   match-history and match-stats may then count a match twice. The SOURCE TABLEs keep
--   the latest value per key and do not.
-- =====================================================================================

SET 'auto.offset.reset' = 'earliest';

-- -------------------------------------------------------------------------------------
-- 1. The canonical event log: match-events (infinite retention)
-- -------------------------------------------------------------------------------------

CREATE STREAM match_events (
  eventId        VARCHAR,
  eventType      VARCHAR,
  schemaVersion  INT,
  matchId        VARCHAR,
  `timestamp`    BIGINT,
  sequence       BIGINT,
  correlationId  VARCHAR,
  causationId    VARCHAR,
  data           VARCHAR
) WITH (
  KAFKA_TOPIC  = 'match-events',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- Completed matches per hour, with their mean duration.
CREATE TABLE matches_completed_per_hour
  WITH (KAFKA_TOPIC = 'ksql-matches-completed-per-hour', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT eventType,
         COUNT(*) AS completed,
         AVG(CAST(EXTRACTJSONFIELD(data, '$.durationMs') AS BIGINT)) AS avg_duration_ms
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType = 'match.completed'
    GROUP BY eventType
    EMIT CHANGES;

-- Matches created per hour and template (classic_1v3, duel_2v1, ...).
CREATE TABLE matches_created_per_hour_by_template
  WITH (KAFKA_TOPIC = 'ksql-matches-created-per-hour-by-template', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT EXTRACTJSONFIELD(data, '$.template') AS template,
         COUNT(*) AS created
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType = 'match.created'
    GROUP BY EXTRACTJSONFIELD(data, '$.template')
    EMIT CHANGES;

-- Responses and votes that ran out of time, per hour.
CREATE TABLE timeouts_per_hour
  WITH (KAFKA_TOPIC = 'ksql-timeouts-per-hour', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT eventType,
         COUNT(*) AS timeouts
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType IN ('response.timed_out', 'vote.timed_out')
    GROUP BY eventType
    EMIT CHANGES;

-- Robot answers per model (response.recorded carries the model, latency and tokens).
CREATE TABLE robot_answers_per_model
  WITH (KAFKA_TOPIC = 'ksql-robot-answers-per-model', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT EXTRACTJSONFIELD(data, '$.model') AS model,
         COUNT(*) AS answers,
         AVG(CAST(EXTRACTJSONFIELD(data, '$.latencyMs') AS BIGINT)) AS avg_latency_ms,
         SUM(CAST(EXTRACTJSONFIELD(data, '$.tokens') AS BIGINT)) AS tokens
    FROM match_events
    WHERE eventType = 'response.recorded' AND EXTRACTJSONFIELD(data, '$.model') IS NOT NULL
    GROUP BY EXTRACTJSONFIELD(data, '$.model')
    EMIT CHANGES;

-- -------------------------------------------------------------------------------------
-- 2. Current state of every match: match-state (compacted, key = match id)
-- -------------------------------------------------------------------------------------

-- A SOURCE TABLE is materialized by ksqlDB, so it answers pull queries.
CREATE SOURCE TABLE match_state (
  match_id      VARCHAR PRIMARY KEY,
  matchId       VARCHAR,
  template      VARCHAR,
  status        VARCHAR,
  round         INT,
  totalRounds   INT,
  seats         ARRAY<STRUCT<identity VARCHAR, kind VARCHAR, playerId VARCHAR, name VARCHAR>>,
  scores        MAP<VARCHAR, INT>,
  createdAt     BIGINT,
  updatedAt     BIGINT,
  completedAt   BIGINT,
  eventsApplied BIGINT
) WITH (
  KAFKA_TOPIC  = 'match-state',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- -------------------------------------------------------------------------------------
-- 3. Finished matches: match-history (compacted, key = match id)
-- -------------------------------------------------------------------------------------

-- As a table: look up one finished match.
CREATE SOURCE TABLE match_history (
  match_id     VARCHAR PRIMARY KEY,
  matchId      VARCHAR,
  status       VARCHAR,
  template     VARCHAR,
  totalRounds  INT,
  createdAt    BIGINT,
  completedAt  BIGINT,
  durationMs   BIGINT,
  seats        ARRAY<STRUCT<identity VARCHAR, kind VARCHAR, playerId VARCHAR, name VARCHAR>>,
  finalScores  MAP<VARCHAR, INT>
) WITH (
  KAFKA_TOPIC  = 'match-history',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- As a stream: every history document, timed by its completion, for the vote analytics.
CREATE STREAM match_history_stream (
  matchId      VARCHAR,
  template     VARCHAR,
  completedAt  BIGINT,
  seats        ARRAY<STRUCT<
                 identity VARCHAR,
                 kind     VARCHAR,
                 voices   ARRAY<STRUCT<round INT, robotId VARCHAR, personality VARCHAR, model VARCHAR>>
               >>,
  rounds       ARRAY<STRUCT<
                 round      INT,
                 durationMs BIGINT,
                 robots     ARRAY<STRUCT<identity VARCHAR, robotId VARCHAR, personality VARCHAR>>,
                 responses  ARRAY<STRUCT<identity VARCHAR, source VARCHAR, model VARCHAR, latencyMs BIGINT, tokens INT>>,
                 votes      ARRAY<STRUCT<voter VARCHAR, votedFor VARCHAR, source VARCHAR>>
               >>
) WITH (
  KAFKA_TOPIC  = 'match-history',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON',
  TIMESTAMP    = 'completedAt'
);

-- One row per round, with the identities of the human seats (the reveal).
CREATE STREAM history_rounds
  WITH (KAFKA_TOPIC = 'ksql-history-rounds', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         TRANSFORM(FILTER(seats, s => s->kind = 'human'), s => s->identity) AS humans,
         EXPLODE(rounds) AS r
    FROM match_history_stream
    EMIT CHANGES;

-- One row per vote, still carrying the round's robot seats.
CREATE STREAM history_votes
  WITH (KAFKA_TOPIC = 'ksql-history-votes', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         humans,
         r->robots AS robots,
         EXPLODE(r->votes) AS v
    FROM history_rounds
    EMIT CHANGES;

-- Flat votes: who voted, for whom, and whether each of them was human.
CREATE STREAM history_votes_flat
  WITH (KAFKA_TOPIC = 'ksql-history-votes-flat', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         v->voter AS voter,
         v->votedFor AS voted_for,
         CASE WHEN ARRAY_CONTAINS(humans, v->voter) THEN 'human' ELSE 'robot' END AS voter_kind,
         ARRAY_CONTAINS(humans, v->votedFor) AS named_a_human,
         robots
    FROM history_votes
    EMIT CHANGES;

-- Human detection accuracy: share of votes that named a human, for human voters and
-- for robot voters, over all finished matches.
CREATE TABLE human_detection_accuracy
  WITH (KAFKA_TOPIC = 'ksql-human-detection-accuracy', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT voter_kind,
         COUNT(*) AS votes,
         SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS correct,
         CAST(SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS accuracy
    FROM history_votes_flat
    GROUP BY voter_kind
    EMIT CHANGES;

-- The same per day (of completion) and template, for human voters.
CREATE TABLE human_detection_accuracy_daily
  WITH (KAFKA_TOPIC = 'ksql-human-detection-accuracy-daily', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT template,
         COUNT(*) AS votes,
         CAST(SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS accuracy
    FROM history_votes_flat
    WINDOW TUMBLING (SIZE 1 DAY)
    WHERE voter_kind = 'human'
    GROUP BY template
    EMIT CHANGES;

-- Per-personality fooled rate: each human vote in a round where a robot personality voiced
-- a seat is one chance to fool that human; the robot fooled them when the vote named its
-- seat. fooled_rate = times taken for human / chances (match-stats' definition).
CREATE STREAM history_human_vote_chances
  WITH (KAFKA_TOPIC = 'ksql-history-human-vote-chances', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         voter,
         voted_for,
         EXPLODE(robots) AS robot
    FROM history_votes_flat
    WHERE voter_kind = 'human'
    EMIT CHANGES;

CREATE TABLE personality_fooled_rate
  WITH (KAFKA_TOPIC = 'ksql-personality-fooled-rate', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT robot->personality AS personality,
         COUNT(*) AS chances,
         SUM(CASE WHEN voted_for = robot->identity THEN 1 ELSE 0 END) AS taken_for_human,
         CAST(SUM(CASE WHEN voted_for = robot->identity THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS fooled_rate
    FROM history_human_vote_chances
    GROUP BY robot->personality
    EMIT CHANGES;

-- Mean round duration per hour of completion.
CREATE TABLE round_duration_per_hour
  WITH (KAFKA_TOPIC = 'ksql-round-duration-per-hour', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT template,
         COUNT(*) AS rounds,
         AVG(r->durationMs) AS avg_round_ms
    FROM history_rounds
    WINDOW TUMBLING (SIZE 1 HOUR)
    GROUP BY template
    EMIT CHANGES;

-- -------------------------------------------------------------------------------------
-- 4. The stats processor's windows: match-stats (compacted, key = statKey)
-- -------------------------------------------------------------------------------------

CREATE SOURCE TABLE match_stats (
  stat_key                VARCHAR PRIMARY KEY,
  statKey                 VARCHAR,
  windowMs                BIGINT,
  windowStart             BIGINT,
  windowEnd               BIGINT,
  matchesCompleted        BIGINT,
  roundsCompleted         BIGINT,
  totalRoundDurationMs    BIGINT,
  meanRoundDurationMs     DOUBLE,
  humanVotes              BIGINT,
  humanVotesCorrect       BIGINT,
  humanDetectionAccuracy  DOUBLE,
  robotVotes              BIGINT,
  robotVotesCorrect       BIGINT,
  personalities           MAP<VARCHAR, STRUCT<roundsVoiced BIGINT, humanVotesSeen BIGINT, takenForHuman BIGINT, takenForHumanRate DOUBLE>>,
  updatedAt               BIGINT
) WITH (
  KAFKA_TOPIC  = 'match-stats',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- As a stream (each update of a window), timed by the window start.
CREATE STREAM match_stats_stream (
  statKey                 VARCHAR,
  windowStart             BIGINT,
  windowEnd               BIGINT,
  matchesCompleted        BIGINT,
  humanVotes              BIGINT,
  humanVotesCorrect       BIGINT,
  personalities           MAP<VARCHAR, STRUCT<roundsVoiced BIGINT, humanVotesSeen BIGINT, takenForHuman BIGINT, takenForHumanRate DOUBLE>>
) WITH (
  KAFKA_TOPIC  = 'match-stats',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON',
  TIMESTAMP    = 'windowStart'
);

-- The latest figures of each window, readable by window start (a table keyed by statKey).
CREATE TABLE match_stats_latest
  WITH (KAFKA_TOPIC = 'ksql-match-stats-latest', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT statKey,
         LATEST_BY_OFFSET(windowStart) AS window_start,
         LATEST_BY_OFFSET(matchesCompleted) AS matches_completed,
         LATEST_BY_OFFSET(humanVotes) AS human_votes,
         LATEST_BY_OFFSET(humanVotesCorrect) AS human_votes_correct
    FROM match_stats_stream
    GROUP BY statKey
    EMIT CHANGES;
