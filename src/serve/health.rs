//! Up/down state of one target with hysteresis (`--down-after`, `--up-after`).

/// `--down-after` / `--up-after`: consecutive results needed to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    pub down_after: u32,
    pub up_after: u32,
}

/// A state change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The first probe of the target decided its state.
    Initial { up: bool },
    /// Up to down or down to up.
    Changed { up: bool },
}

/// Up/down state of one target, like Kamailio's dispatcher: the first result
/// sets it, then it flips only after enough consecutive opposite results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    up: Option<bool>,
    ok_run: u32,
    pub(super) fail_run: u32,
}

impl Health {
    /// Feeds one probe result; returns the transition it caused, if any.
    pub fn observe(&mut self, ok: bool, h: Hysteresis) -> Option<Transition> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        match self.up {
            None => {
                self.up = Some(ok);
                Some(Transition::Initial { up: ok })
            }
            Some(true) if self.fail_run >= h.down_after.max(1) => {
                self.up = Some(false);
                Some(Transition::Changed { up: false })
            }
            Some(false) if self.ok_run >= h.up_after.max(1) => {
                self.up = Some(true);
                Some(Transition::Changed { up: true })
            }
            _ => None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Hysteresis = Hysteresis {
        down_after: 2,
        up_after: 1,
    };

    #[test]
    fn hysteresis_needs_consecutive_failures_to_go_down() {
        let mut h = Health::default();
        assert_eq!(h.observe(true, H), Some(Transition::Initial { up: true }));
        assert_eq!(h.observe(false, H), None);
        assert!(h.is_up());
        assert_eq!(h.observe(true, H), None, "a success resets the failure run");
        assert_eq!(h.observe(false, H), None);
        assert_eq!(h.observe(false, H), Some(Transition::Changed { up: false }));
        assert_eq!(h.observe(false, H), None, "logged once");
        assert_eq!(h.observe(true, H), Some(Transition::Changed { up: true }));
    }

    #[test]
    fn hysteresis_up_after_three() {
        let h3 = Hysteresis {
            down_after: 1,
            up_after: 3,
        };
        let mut h = Health::default();
        assert_eq!(
            h.observe(false, h3),
            Some(Transition::Initial { up: false })
        );
        assert_eq!(h.observe(true, h3), None);
        assert_eq!(h.observe(true, h3), None);
        assert_eq!(h.observe(true, h3), Some(Transition::Changed { up: true }));
        assert_eq!(
            h.observe(false, h3),
            Some(Transition::Changed { up: false })
        );
    }
}
