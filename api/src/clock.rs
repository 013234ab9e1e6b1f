//! The server's clock: the system clock, moved by a whole number of days
//! when `puhui serve --clock-offset-days N` asks. Every date the server
//! decides by (today in China, a claim's "not in the future", a course's
//! "not before today", audit times) comes from here, so a demonstration or
//! an end-to-end test can walk a treatment course through months of cycles
//! in minutes. In production the offset is 0; whoever runs the server
//! controls the host's clock anyway, so the option gives no one more power.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_days: i64,
}

impl Clock {
    pub fn offset_by_days(offset_days: i64) -> Clock {
        Clock { offset_days }
    }

    pub fn offset_days(self) -> i64 {
        self.offset_days
    }

    pub fn now(self) -> DateTime<Utc> {
        Utc::now() + Duration::days(self.offset_days)
    }
}
