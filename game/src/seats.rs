//! Deterministic shuffles: which seat is human, and the order responses are shown in.
//!
//! Both are derived from the match id with SHA-256, so replays give the same seats.
//!
//! ```
//! use game::{seats::seat_kinds, templates::template};
//! use schemas::SeatKind;
//! let t = template("duo_2v2").unwrap();
//! let kinds = seat_kinds("match-42", t);
//! assert_eq!(kinds.len(), 4);
//! assert_eq!(kinds.iter().filter(|k| **k == SeatKind::Human).count(), 2);
//! assert_eq!(kinds, seat_kinds("match-42", t));
//! ```

use schemas::{Identity, Seat, SeatKind, SeatReveal};

use super::ids::digest;
use super::templates::Template;

/// Fisher–Yates shuffle driven by the bytes of a SHA-256 digest (at most 32 items).
fn shuffle<T>(items: &mut [T], seed: &[u8; 32]) {
    for i in (1..items.len()).rev() {
        let j = usize::from(seed[i % seed.len()]) % (i + 1);
        items.swap(i, j);
    }
}

/// The kind of each seat `A`, `B`, … for a match of `template`.
pub fn seat_kinds(match_id: &str, template: &Template) -> Vec<SeatKind> {
    let mut kinds = Vec::with_capacity(template.seats());
    kinds.extend((0..template.humans).map(|_| SeatKind::Human));
    kinds.extend((0..template.robots).map(|_| SeatKind::Robot));
    shuffle(&mut kinds, &digest(&[match_id.as_bytes(), b"seats"]));
    kinds
}

/// The order in which the given seats' responses are shown in `round`.
pub fn presentation_order(match_id: &str, round: u32, identities: &mut [Identity]) {
    identities.sort_unstable();
    shuffle(
        identities,
        &digest(&[match_id.as_bytes(), &round.to_le_bytes(), b"presentation"]),
    );
}

/// The reveal entries of a new match's seats: who sits where, no voices yet. Shared by the
/// match state and the history document, which both start from `match.created`.
pub(crate) fn reveals(seats: &[Seat]) -> Vec<SeatReveal> {
    seats
        .iter()
        .map(|s| SeatReveal {
            identity: s.identity,
            kind: s.kind,
            player_id: s.player_id.clone(),
            name: s.name.clone(),
            voices: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::TEMPLATES;

    #[test]
    fn seat_shuffle_varies_with_match_id_and_keeps_counts() {
        let t = &TEMPLATES[5];
        let distinct: std::collections::BTreeSet<String> = (0..50)
            .map(|i| format!("{:?}", seat_kinds(&format!("m{i}"), t)))
            .collect();
        assert!(
            distinct.len() > 10,
            "shuffle should vary: {}",
            distinct.len()
        );
        for i in 0..50 {
            let kinds = seat_kinds(&format!("m{i}"), t);
            assert_eq!(kinds.iter().filter(|k| **k == SeatKind::Human).count(), 4);
        }
    }

    #[test]
    fn presentation_order_is_a_permutation_independent_of_input_order() {
        let mut a = vec![Identity::ALL[2], Identity::ALL[0], Identity::ALL[1]];
        let mut b = vec![Identity::ALL[1], Identity::ALL[2], Identity::ALL[0]];
        presentation_order("m", 3, &mut a);
        presentation_order("m", 3, &mut b);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, Identity::ALL[..3].to_vec());
    }
}
