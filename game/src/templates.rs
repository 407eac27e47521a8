//! Match templates: how many humans and robots sit at the table.
//!
//! ```
//! use game::templates::{template, Template};
//! let t = template("duo_2v2").unwrap();
//! assert_eq!((t.humans, t.robots, t.seats()), (2, 2, 4));
//! assert_eq!(Template::default_template().name, "classic_1v3");
//! assert!(template("chess").is_none());
//! ```

/// A match template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// Name used in `match.create`.
    pub name: &'static str,
    /// Human seats.
    pub humans: u32,
    /// Robot seats.
    pub robots: u32,
}

impl Template {
    /// Total seats (3–8).
    pub fn seats(&self) -> usize {
        (self.humans + self.robots) as usize
    }

    /// `classic_1v3`.
    pub fn default_template() -> &'static Template {
        &TEMPLATES[0]
    }
}

/// All templates; the first is the default.
pub const TEMPLATES: [Template; 6] = [
    Template {
        name: "classic_1v3",
        humans: 1,
        robots: 3,
    },
    Template {
        name: "duel_2v1",
        humans: 2,
        robots: 1,
    },
    Template {
        name: "duo_2v2",
        humans: 2,
        robots: 2,
    },
    Template {
        name: "trio_3v3",
        humans: 3,
        robots: 3,
    },
    Template {
        name: "solo_1v5",
        humans: 1,
        robots: 5,
    },
    Template {
        name: "mega_4v4",
        humans: 4,
        robots: 4,
    },
];

/// Looks a template up by name.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_three_to_eight_seats_and_at_least_one_of_each() {
        for t in &TEMPLATES {
            assert!((3..=8).contains(&t.seats()), "{}", t.name);
            assert!(t.humans >= 1 && t.robots >= 1, "{}", t.name);
            assert_eq!(template(t.name), Some(t));
        }
    }
}
