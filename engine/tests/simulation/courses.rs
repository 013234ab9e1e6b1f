//! Treatment courses in the seeded simulation: the generator's requests for
//! authorisations, follow-ups, cancels and dispensings against a course, and
//! the model of what the specification says about them (issue 15): each
//! authorisation's decision, a course's status and cycles as of a date, the
//! course rules 6-8 of a dispensing, the next assessment due and the case
//! reserve. Written from the rules, not from the engine's code: nothing here
//! calls the engine's course functions; the engine is only driven and read
//! through the store.

use std::collections::BTreeSet;

use engine::domain::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission,
};
use engine::store::authorizations;

use super::*;

/// A drug's course terms in the product.
pub(super) struct CourseTerms {
    pub requires_authorization: bool,
    pub max_cycle_days: Option<u32>,
    pub max_course_cycles: Option<u32>,
    pub followup_every: u32,
}

impl CourseTerms {
    pub const NONE: CourseTerms = CourseTerms {
        requires_authorization: false,
        max_cycle_days: None,
        max_course_cycles: None,
        followup_every: 0,
    };

    /// The drug's lines of the product TOML.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        if self.requires_authorization {
            out.push_str("requires_authorization = true\n");
        }
        if let Some(days) = self.max_cycle_days {
            out.push_str(&format!("max_cycle_days = {days}\n"));
        }
        if let Some(cycles) = self.max_course_cycles {
            out.push_str(&format!("max_course_cycles = {cycles}\n"));
        }
        if self.followup_every > 0 {
            out.push_str(&format!(
                "followup_every_cycles = {}\n",
                self.followup_every
            ));
        }
        out
    }
}

/// Hospitals that may prescribe a course in the simulated products.
pub(super) const QUALIFIED_PRESCRIBERS: &[&str] = &["H-001", "H-002"];
const RESPONSES: &[&str] = &[
    "complete_response",
    "partial_response",
    "stable_disease",
    "stable_disease",
    "progressive_disease",
];

/// An authorisation request as the generator builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CourseSpec {
    pub member_id: i64,
    pub drug: String,
    pub diagnosis: String,
    pub markers: Vec<(String, bool)>,
    pub prescriber: String,
    pub cycle_days: u32,
    pub quantity: i64,
    pub unit_price: i64,
    pub basic_per_cycle: i64,
    pub cycles: u32,
    pub start: NaiveDate,
}

impl CourseSpec {
    pub fn submission(&self, reformatted: bool) -> AuthorizationSubmission {
        let price = if reformatted {
            json!(self.unit_price as f64 / 100.0)
        } else {
            json!(yuan(self.unit_price))
        };
        serde_json::from_value(json!({
            "member_id": self.member_id,
            "drug": if reformatted { self.drug.to_ascii_lowercase() } else { self.drug.clone() },
            "diagnosis": if reformatted { self.diagnosis.replace('.', "") } else { self.diagnosis.clone() },
            "biomarkers": self.markers
                .iter()
                .map(|(marker, positive)| json!({ "marker": marker, "positive": positive }))
                .collect::<Vec<_>>(),
            "prescriber": self.prescriber,
            "cycle_days": self.cycle_days,
            "quantity_per_cycle": self.quantity,
            "unit_price": price,
            "expected_basic_paid_per_cycle": yuan(self.basic_per_cycle),
            "cycles": self.cycles,
            "start_date": self.start.to_string(),
        }))
        .expect("authorization json")
    }
}

/// What the default seeds must reach among courses, besides the reasons
/// of claims.
pub(super) const SITUATIONS: &[&str] = &[
    "authorization active",
    "authorization denied",
    "authorization cut at the period end",
    "authorization not_on_formulary",
    "authorization indication_mismatch",
    "authorization biomarker_required",
    "authorization prescriber_not_qualified",
    "authorization cycle_too_long",
    "authorization course_too_long",
    "authorization overlapping_course",
    "authorization beyond_period",
    "authorization waiting_period",
    "authorization not_covered_period",
    "start_in_the_past",
    "followup recorded",
    "progressive_disease",
    "before_course_start",
    "future_date",
    "course cancelled",
    "not_active",
    "dispensed in a cycle",
    "dispensing on a cycle's first day",
    "dispensing on a cycle's last day",
    "dispensing reversed",
    "freed cycle dispensed again",
    "authorization_required",
    "authorization_mismatch",
    "course_ended",
    "outside_course",
    "cycle_already_dispensed",
    "quantity_exceeds_authorization",
    "price_exceeds_authorization",
    "followup_required",
    "unknown_authorization",
    "authorization_not_allowed",
    "case reserve",
];

pub(super) fn assessment(assessed_on: NaiveDate, response: &str) -> AssessmentSubmission {
    AssessmentSubmission {
        assessed_on: assessed_on.to_string(),
        response: response.to_owned(),
    }
}

pub(super) fn cancel_submission(reason: &str, padded: bool) -> CancelSubmission {
    CancelSubmission {
        reason: if padded {
            format!(" {reason}  ")
        } else {
            reason.to_owned()
        },
    }
}

/// A course as the model knows it.
#[derive(Debug, Clone)]
pub(super) struct ModelCourse {
    pub id: i64,
    pub spec: CourseSpec,
    /// The product whose period holds the start, when the member is enrolled
    /// in it.
    pub product: Option<&'static str>,
    pub denied: bool,
    pub reasons: Vec<&'static str>,
    pub authorized: u32,
    pub assessments: Vec<(NaiveDate, &'static str)>,
    pub cancelled_on: Option<NaiveDate>,
}

impl ModelCourse {
    /// Cycle k covers [start + (k-1)L, start + kL - 1].
    pub fn cycle(&self, k: u32) -> (NaiveDate, NaiveDate) {
        let length = i64::from(self.spec.cycle_days);
        let first = self.spec.start + Duration::days((i64::from(k) - 1) * length);
        (first, first + Duration::days(length - 1))
    }

    fn last_day(&self) -> Option<NaiveDate> {
        (self.authorized > 0).then(|| self.cycle(self.authorized).1)
    }

    pub fn cycle_of(&self, day: NaiveDate) -> Option<u32> {
        (1..=self.authorized).find(|&k| {
            let (first, last) = self.cycle(k);
            first <= day && day <= last
        })
    }

    fn progression(&self) -> Option<NaiveDate> {
        self.assessments
            .iter()
            .filter(|(_, response)| *response == "progressive_disease")
            .map(|(day, _)| *day)
            .min()
    }

    /// The status on `day`. An end happens on its day (the progression's
    /// assessment, the cancel) or the day after the last cycle; the first to
    /// happen sticks (progression, then cancel, then completion on one day).
    /// `shown` is a read on `day`: an event of that day shows already;
    /// otherwise (a dispensing's service date, the reserve's as-of date) only
    /// events before it count.
    pub fn status(&self, day: NaiveDate, shown: bool) -> &'static str {
        if self.denied {
            return "denied";
        }
        let counts = |event: NaiveDate| event < day || (shown && event == day);
        let mut ends: Vec<(NaiveDate, u8, &'static str)> = Vec::new();
        if let Some(p) = self.progression().filter(|p| counts(*p)) {
            ends.push((p, 0, "ended_progression"));
        }
        if let Some(c) = self.cancelled_on.filter(|c| counts(*c)) {
            ends.push((c, 1, "cancelled"));
        }
        if let Some(last) = self.last_day().filter(|last| *last < day) {
            ends.push((last, 2, "completed"));
        }
        ends.sort();
        ends.first().map_or("active", |(_, _, status)| status)
    }

    /// Rule 8: cycles after the first f look back to the first day of cycle
    /// m = f x floor((k - 1) / f).
    fn followup_anchor(every: u32, k: u32) -> Option<u32> {
        (every > 0 && k > every).then(|| every * ((k - 1) / every))
    }

    fn followup_met(&self, every: u32, k: u32, service_date: NaiveDate) -> bool {
        Self::followup_anchor(every, k).is_none_or(|m| {
            let opens = self.cycle(m).0;
            self.assessments
                .iter()
                .any(|(day, _)| opens <= *day && *day <= service_date)
        })
    }

    /// The first day of the next cycle, from the one `today` falls in (the
    /// first before the start), not dispensed and needing an assessment
    /// that is not recorded yet.
    fn next_assessment_due(
        &self,
        every: u32,
        today: NaiveDate,
        dispensed: &BTreeSet<u32>,
    ) -> Option<NaiveDate> {
        let from = if today < self.spec.start {
            1
        } else {
            self.cycle_of(today)?
        };
        (from..=self.authorized)
            .filter(|k| !dispensed.contains(k))
            .find(|&k| {
                Self::followup_anchor(every, k).is_some_and(|m| {
                    let opens = self.cycle(m).0;
                    !self.assessments.iter().any(|(day, _)| opens <= *day)
                })
            })
            .map(|k| self.cycle(k).0)
    }

    /// round(c x (quantity_per_cycle x unit_price - expected basic)).
    fn cycle_cost(&self, rate: Decimal) -> i64 {
        share(
            rate,
            self.spec.quantity * self.spec.unit_price - self.spec.basic_per_cycle,
        )
    }

    /// The course's own case reserve as of `day`.
    fn reserve(&self, rate: Decimal, day: NaiveDate, dispensed: &BTreeSet<u32>) -> i64 {
        if matches!(
            self.status(day, false),
            "denied" | "cancelled" | "ended_progression"
        ) {
            return 0;
        }
        let late_from = day - Duration::days(30);
        let open = (1..=self.authorized)
            .filter(|k| !dispensed.contains(k) && self.cycle(*k).1 >= late_from)
            .count() as i64;
        open * self.cycle_cost(rate)
    }
}

/// After ignoring case and the dot, one diagnosis is a prefix of the other.
fn diagnoses_match(a: &str, b: &str) -> bool {
    let (a, b) = (norm_code(a), norm_code(b));
    a.starts_with(&b) || b.starts_with(&a)
}

fn drug_of(atc: &str) -> Option<&'static Drug> {
    FORMULARY.iter().find(|d| d.atc.eq_ignore_ascii_case(atc))
}

/// What rules 6-8 say about a drug item of a claim.
pub(super) struct CourseVerdict {
    pub reasons: Vec<&'static str>,
    pub cycle: Option<u32>,
    pub meets_biomarker: bool,
}

impl Sim<'_> {
    /// One request about a course: a new one, a follow-up, a cancel or a
    /// dispensing (most often).
    pub(super) fn course_step(&mut self) {
        if self.courses.is_empty() {
            return self.request_course();
        }
        match self.rng.random_range(0..100) {
            0..=24 => self.request_course(),
            25..=39 => self.followup(),
            40..=44 => self.cancel_course(),
            45..=49 => self.reverse_dispensing(),
            _ => self.dispense(),
        }
    }

    /// Reverses a dispensing that paid a cycle of a course still active,
    /// so that the cycle is free to be dispensed again.
    fn reverse_dispensing(&mut self) {
        let today = self.today;
        let paid: Vec<i64> = self
            .claims
            .values()
            .filter(|c| !c.reversed && c.items.iter().any(|i| i.paid && i.cycle.is_some()))
            .filter(|c| {
                c.spec
                    .authorization_id
                    .is_some_and(|id| self.courses[&id].status(today, true) == "active")
            })
            .map(|c| c.id)
            .collect();
        let Some(&claim_id) = paid.choose(&mut self.rng) else {
            return self.dispense();
        };
        let key = self.fresh_key("insurer:1");
        let reason = "dispensed in error".to_owned();
        self.send(
            "insurer:1".to_owned(),
            key,
            Request::Reverse { claim_id, reason },
            false,
        );
    }

    /// The next turn of generator `which`.
    fn turn(&mut self, which: usize) -> u32 {
        self.course_turns[which] += 1;
        self.course_turns[which]
    }

    /// The cycles of a course paid on claims that stand, leaving out one.
    pub(super) fn dispensed(&self, course: i64, except: Option<i64>) -> BTreeSet<u32> {
        self.claims
            .values()
            .filter(|c| c.spec.authorization_id == Some(course) && !c.reversed)
            .filter(|c| Some(c.id) != except)
            .flat_map(|c| c.items.iter().filter(|i| i.paid).filter_map(|i| i.cycle))
            .collect()
    }

    /// The coinsurance rate the member's claims for `diagnosis` get under
    /// the product's current version.
    fn rate_for(&self, member: i64, product: &'static str, diagnosis: &str) -> Decimal {
        let terms = self.product_def(product).terms(Kind::Drug);
        let declared = &self.members[&member].enrollments[product].declared;
        let preexisting = GROUPS.iter().any(|(_, patterns)| {
            let in_group = |code: &str| patterns.iter().any(|p| code_in(p, code));
            in_group(diagnosis) && declared.iter().any(|d| in_group(d))
        });
        if preexisting {
            terms.rate_preexisting
        } else {
            terms.rate
        }
    }

    /// Rules 6-8 for a drug item on the formulary, judged on the claim's
    /// service date against the course as recorded now (without the cycles
    /// of claim `except`).
    pub(super) fn course_verdict(
        &self,
        spec: &ClaimSpec,
        drug: &Drug,
        item: &ItemSpec,
        except: Option<i64>,
    ) -> CourseVerdict {
        let none = |reasons: Vec<&'static str>| CourseVerdict {
            reasons,
            cycle: None,
            meets_biomarker: false,
        };
        let ItemSpec::Drug {
            atc,
            quantity,
            unit_price,
            ..
        } = item
        else {
            return none(vec![]);
        };
        let Some(course) = spec.authorization_id.and_then(|id| self.courses.get(&id)) else {
            return none(if drug.course.requires_authorization {
                vec!["authorization_required"]
            } else {
                vec![]
            });
        };
        if course.denied
            || course.spec.member_id != spec.member_id
            || !course.spec.drug.eq_ignore_ascii_case(atc)
            || !diagnoses_match(&course.spec.diagnosis, &spec.diagnosis)
        {
            return none(vec!["authorization_mismatch"]);
        }
        let day = spec.service_date;
        let mut reasons = Vec::new();
        if matches!(course.status(day, false), "cancelled" | "ended_progression") {
            reasons.push("course_ended");
        }
        let cycle = course.cycle_of(day);
        match cycle {
            None => reasons.push("outside_course"),
            Some(k) if self.dispensed(course.id, except).contains(&k) => {
                reasons.push("cycle_already_dispensed")
            }
            Some(_) => {}
        }
        if *quantity > course.spec.quantity {
            reasons.push("quantity_exceeds_authorization");
        }
        if *unit_price > course.spec.unit_price {
            reasons.push("price_exceeds_authorization");
        }
        if cycle.is_some_and(|k| !course.followup_met(drug.course.followup_every, k, day)) {
            reasons.push("followup_required");
        }
        let meets_biomarker = drug.biomarker.is_none_or(|required| {
            course
                .spec
                .markers
                .iter()
                .any(|(m, positive)| *positive && m.eq_ignore_ascii_case(required))
        });
        CourseVerdict {
            reasons,
            cycle,
            meets_biomarker,
        }
    }

    // -- authorisations -----------------------------------------------------

    fn course_member(&mut self) -> i64 {
        // Mostly members covered a few days from now and past their waiting
        // period.
        let soon = self.today + Duration::days(3);
        let current: Vec<i64> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.enrollments
                    .iter()
                    .any(|(p, e)| e.first_covered_day <= soon && soon <= self.product_def(p).end)
            })
            .map(|(id, _)| *id)
            .collect();
        let pool: Vec<i64> = if !current.is_empty() && self.rng.random_bool(0.9) {
            current
        } else {
            self.members.keys().copied().collect()
        };
        *pool.choose(&mut self.rng).expect("member")
    }

    /// A request for a course: mostly one that the rules grant, otherwise
    /// one that trips a chosen rule (a denial reason, or a start in the
    /// past); waiting periods and periods not covered come on their own.
    pub(super) fn request_course(&mut self) {
        let member_id = self.course_member();
        // Mostly crizotinib (paid only in a course), some osimertinib (a
        // course is allowed, not required).
        let drug = if self.rng.random_bool(0.75) {
            &FORMULARY[3]
        } else {
            &FORMULARY[0]
        };
        // Every other request trips the next rule in turn, so that each
        // is reached in a short run.
        let turn = self.turn(0);
        let flavour = if turn.is_multiple_of(2) {
            (turn / 2) % 10
        } else {
            99
        };
        let mut spec = CourseSpec {
            member_id,
            drug: drug.atc.to_owned(),
            diagnosis: drug
                .typical_diagnoses
                .choose(&mut self.rng)
                .expect("dx")
                .to_string(),
            markers: drug
                .biomarker
                .map(|m| vec![(m.to_owned(), true)])
                .unwrap_or_default(),
            prescriber: QUALIFIED_PRESCRIBERS
                .choose(&mut self.rng)
                .expect("prescriber")
                .to_string(),
            cycle_days: *[7, 10, 14, 20, 28, 30].choose(&mut self.rng).expect("days"),
            quantity: self.rng.random_range(1..=60),
            unit_price: self.rng.random_range(500..20_000),
            basic_per_cycle: 0,
            cycles: self.rng.random_range(1..=6),
            start: self.today + Duration::days(self.rng.random_range(0..6)),
        };
        if self.rng.random_bool(0.7) {
            spec.basic_per_cycle = self
                .rng
                .random_range(0..=spec.quantity * spec.unit_price / 2);
        }
        match flavour {
            0 => spec.drug = OFF_FORMULARY.to_owned(),
            1 => spec.diagnosis = "K35.8".to_owned(),
            2 => spec.markers = vec![("ALK".to_owned(), false), ("EGFR".to_owned(), false)],
            3 => spec.prescriber = "H-003".to_owned(),
            4 => {
                spec.cycle_days =
                    drug.course.max_cycle_days.unwrap_or(30) + self.rng.random_range(1..10)
            }
            5 => {
                spec.cycles =
                    drug.course.max_course_cycles.unwrap_or(6) + self.rng.random_range(1..5)
            }
            6 => spec.start = self.today - Duration::days(self.rng.random_range(1..4)),
            // The member's drug again while a course of it runs.
            7 => {
                let today = self.today;
                let live: Vec<ModelCourse> = self
                    .courses
                    .values()
                    .filter(|c| c.status(today, true) == "active")
                    .cloned()
                    .collect();
                if let Some(other) = live.choose(&mut self.rng) {
                    let last = other.last_day().expect("an active course has cycles");
                    let span = (last - today).num_days().max(0);
                    spec.member_id = other.spec.member_id;
                    spec.drug = other.spec.drug.clone();
                    spec.diagnosis = other.spec.diagnosis.clone();
                    spec.markers = other.spec.markers.clone();
                    spec.start = today + Duration::days(self.rng.random_range(0..=span));
                }
            }
            // Late in a period: cycles cut at its end, or none fits.
            8 | 9 => {
                let ends = self.products.values().map(|p| p.versions[0].0.end);
                if let Some(end) = ends.filter(|e| *e >= self.today).min() {
                    let back = self.rng.random_range(0..i64::from(spec.cycle_days) * 2);
                    spec.start = (end - Duration::days(back)).max(self.today);
                    spec.cycles = spec.cycles.max(2);
                }
            }
            _ => {}
        }
        let actor = if self.rng.random_bool(0.5) {
            "insurer:1".to_owned()
        } else {
            format!("provider:{}", spec.prescriber)
        };
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Authorize(spec), false);
    }

    pub(super) fn predict_authorize(&self, spec: &CourseSpec) -> Expect {
        if spec.start < self.today {
            return Expect::Invalid("start_in_the_past");
        }
        if !self.members.contains_key(&spec.member_id) {
            return Expect::Invalid("unknown_member");
        }
        Expect::Fresh
    }

    /// The decision on a request: (product, reasons, cycles authorised).
    fn decide_course(&self, spec: &CourseSpec) -> (Option<&'static str>, Vec<&'static str>, u32) {
        let member = &self.members[&spec.member_id];
        let product = self
            .products
            .iter()
            .find(|(id, p)| {
                let def = &p.versions[0].0;
                def.start <= spec.start
                    && spec.start <= def.end
                    && member.enrollments.contains_key(*id)
            })
            .map(|(id, _)| *id);
        let Some(product) = product else {
            return (None, vec!["not_covered_period"], 0);
        };
        let def = self.product_def(product);
        let enrolled = &member.enrollments[product];
        if spec.start < enrolled.coverage_start || spec.start > def.end {
            return (Some(product), vec!["not_covered_period"], 0);
        }
        if spec.start < enrolled.first_covered_day {
            return (Some(product), vec!["waiting_period"], 0);
        }
        let Some(drug) = drug_of(&spec.drug) else {
            return (Some(product), vec!["not_on_formulary"], 0);
        };
        let mut reasons = Vec::new();
        if !drug.indications.iter().any(|p| code_in(p, &spec.diagnosis)) {
            reasons.push("indication_mismatch");
        }
        if let Some(required) = drug.biomarker
            && !spec
                .markers
                .iter()
                .any(|(m, positive)| *positive && m.eq_ignore_ascii_case(required))
        {
            reasons.push("biomarker_required");
        }
        if !QUALIFIED_PRESCRIBERS.contains(&spec.prescriber.as_str()) {
            reasons.push("prescriber_not_qualified");
        }
        if drug
            .course
            .max_cycle_days
            .is_some_and(|most| spec.cycle_days > most)
        {
            reasons.push("cycle_too_long");
        }
        if drug
            .course
            .max_course_cycles
            .is_some_and(|most| spec.cycles > most)
        {
            reasons.push("course_too_long");
        }
        let probe = ModelCourse {
            id: 0,
            spec: spec.clone(),
            product: Some(product),
            denied: false,
            reasons: vec![],
            authorized: spec.cycles,
            assessments: vec![],
            cancelled_on: None,
        };
        let requested_last = probe.cycle(spec.cycles).1;
        let overlaps = self.courses.values().any(|other| {
            let live =
                !other.denied && other.cancelled_on.is_none() && other.progression().is_none();
            live && other.spec.member_id == spec.member_id
                && other.spec.drug.eq_ignore_ascii_case(&spec.drug)
                && other.spec.start <= requested_last
                && spec.start <= other.last_day().expect("a live course has cycles")
        });
        if overlaps {
            reasons.push("overlapping_course");
        }
        if !reasons.is_empty() {
            return (Some(product), reasons, 0);
        }
        let authorized = (1..=spec.cycles)
            .take_while(|k| probe.cycle(*k).1 <= def.end)
            .count() as u32;
        if authorized == 0 {
            return (Some(product), vec!["beyond_period"], 0);
        }
        (Some(product), vec![], authorized)
    }

    pub(super) fn apply_authorize(&mut self, spec: &CourseSpec, body: &Value) {
        let (product, reasons, authorized) = self.decide_course(spec);
        let id = body["id"].as_i64().expect("authorization id");
        assert!(!self.courses.contains_key(&id), "authorisation ids are new");
        let course = ModelCourse {
            id,
            spec: spec.clone(),
            product,
            denied: !reasons.is_empty(),
            reasons,
            authorized,
            assessments: vec![],
            cancelled_on: None,
        };
        self.note(if course.denied {
            "authorization denied"
        } else {
            "authorization active"
        });
        if course.authorized > 0 && course.authorized < spec.cycles {
            self.note("authorization cut at the period end");
        }
        for reason in &course.reasons {
            *self
                .seen
                .entry(match *reason {
                    "not_covered_period" => "authorization not_covered_period",
                    "waiting_period" => "authorization waiting_period",
                    "not_on_formulary" => "authorization not_on_formulary",
                    "indication_mismatch" => "authorization indication_mismatch",
                    "biomarker_required" => "authorization biomarker_required",
                    "prescriber_not_qualified" => "authorization prescriber_not_qualified",
                    "cycle_too_long" => "authorization cycle_too_long",
                    "course_too_long" => "authorization course_too_long",
                    "overlapping_course" => "authorization overlapping_course",
                    _ => "authorization beyond_period",
                })
                .or_default() += 1;
        }
        self.courses.insert(id, course);
        self.check_course_view(id, body, self.today);
        self.touched.insert(spec.member_id);
    }

    // -- follow-ups and cancels ---------------------------------------------

    fn pick_course(&mut self, live: bool) -> Option<i64> {
        let today = self.today;
        let active: Vec<i64> = self
            .courses
            .values()
            .filter(|c| c.status(today, true) == "active")
            .map(|c| c.id)
            .collect();
        let all: Vec<i64> = self.courses.keys().copied().collect();
        let pool = if live && !active.is_empty() && self.rng.random_bool(0.85) {
            active
        } else {
            all
        };
        pool.choose(&mut self.rng).copied()
    }

    pub(super) fn followup(&mut self) {
        let Some(id) = self.pick_course(true) else {
            return;
        };
        let course = &self.courses[&id];
        let start = course.spec.start;
        // A dispensing's service date on this course, for a progression on
        // that very day.
        let served: Vec<NaiveDate> = self
            .claims
            .values()
            .filter(|c| c.spec.authorization_id == Some(id))
            .map(|c| c.spec.service_date)
            .collect();
        // Every third is dated after today or before the start, in turn.
        let turn = self.turn(1);
        let case = if turn.is_multiple_of(3) {
            turn / 3 % 2
        } else {
            self.rng.random_range(2..20)
        };
        let assessed_on = match case {
            0 => self.today + Duration::days(self.rng.random_range(1..3)),
            1 => start - Duration::days(1),
            2..=7 if !served.is_empty() => *served.choose(&mut self.rng).expect("date"),
            _ if start > self.today => self.today,
            _ => {
                let span = (self.today - start).num_days().min(20);
                self.today - Duration::days(self.rng.random_range(0..=span))
            }
        };
        let response = *RESPONSES.choose(&mut self.rng).expect("response");
        let key = self.fresh_key("provider:H-001");
        self.send(
            "provider:H-001".to_owned(),
            key,
            Request::Followup {
                course: id,
                assessed_on,
                response,
            },
            false,
        );
    }

    pub(super) fn predict_followup(&self, course: i64, assessed_on: NaiveDate) -> Expect {
        let Some(course) = self.courses.get(&course) else {
            return Expect::NotFound;
        };
        if course.denied {
            return Expect::Conflict("authorization_denied");
        }
        if assessed_on < course.spec.start {
            return Expect::Invalid("before_course_start");
        }
        if assessed_on > self.today {
            return Expect::Invalid("future_date");
        }
        Expect::Fresh
    }

    pub(super) fn apply_followup(
        &mut self,
        id: i64,
        assessed_on: NaiveDate,
        response: &'static str,
        body: &Value,
    ) {
        let course = self.courses.get_mut(&id).expect("course");
        if response == "progressive_disease" {
            let on_a_service_date = self
                .claims
                .values()
                .any(|c| c.spec.authorization_id == Some(id) && c.spec.service_date == assessed_on);
            if on_a_service_date {
                *self
                    .seen
                    .entry("progression on a service date")
                    .or_default() += 1;
            }
        }
        course.assessments.push((assessed_on, response));
        let member = course.spec.member_id;
        self.note("followup recorded");
        self.note(response);
        self.check_course_view(id, body, self.today);
        self.touched.insert(member);
    }

    pub(super) fn cancel_course(&mut self) {
        // Every third is of a course that is not active (409).
        let today = self.today;
        let ended: Vec<i64> = self
            .courses
            .values()
            .filter(|c| c.status(today, true) != "active")
            .map(|c| c.id)
            .collect();
        let picked = match ended.choose(&mut self.rng) {
            Some(id) if self.turn(3).is_multiple_of(3) => Some(*id),
            _ => self.pick_course(true),
        };
        let Some(id) = picked else {
            return;
        };
        let reason = if self.rng.random_bool(0.05) {
            " ".to_owned()
        } else {
            format!("treatment changed {}", self.rng.random_range(0..100))
        };
        let key = self.fresh_key("insurer:1");
        self.send(
            "insurer:1".to_owned(),
            key,
            Request::Cancel { course: id, reason },
            false,
        );
    }

    pub(super) fn predict_cancel(&self, course: i64, reason: &str) -> Expect {
        if reason.trim().is_empty() {
            return Expect::Invalid("invalid_reason");
        }
        match self.courses.get(&course) {
            None => Expect::NotFound,
            Some(c) if c.status(self.today, true) != "active" => Expect::Conflict("not_active"),
            Some(_) => Expect::Fresh,
        }
    }

    pub(super) fn apply_cancel(&mut self, id: i64, body: &Value) {
        let today = self.today;
        let course = self.courses.get_mut(&id).expect("course");
        course.cancelled_on = Some(today);
        let member = course.spec.member_id;
        self.note("course cancelled");
        self.check_course_view(id, body, today);
        self.touched.insert(member);
    }

    // -- dispensings --------------------------------------------------------

    /// A dispensing against a course: half the time one the rules pay (the
    /// course's member, drug, diagnosis and terms, in a cycle that has
    /// begun, often on its first or last day), otherwise with one departure
    /// from it: another member or drug, a diagnosis that does not match, a
    /// day outside the course, more than authorised, no authorisation named
    /// or one that does not exist, two items.
    pub(super) fn dispense(&mut self) {
        let today = self.today;
        // Mostly an active course with a cycle that has begun and is not
        // dispensed yet.
        let active_first = self.rng.random_bool(0.8);
        let started: Vec<i64> = self
            .courses
            .values()
            .filter(|c| !c.denied && c.spec.start <= today)
            .filter(|c| {
                !active_first
                    || c.status(today, true) == "active" && {
                        let dispensed = self.dispensed(c.id, None);
                        (1..=c.authorized).any(|k| c.cycle(k).0 <= today && !dispensed.contains(&k))
                    }
            })
            .map(|c| c.id)
            .collect();
        let id = match started.choose(&mut self.rng) {
            Some(id) if self.rng.random_bool(0.92) => *id,
            _ => match self.pick_course(false) {
                Some(id) => id,
                None => return,
            },
        };
        let course = self.courses[&id].clone();
        // Mostly the latest cycle that has begun and is not dispensed, else
        // the cycle of today or one of the two before it.
        let dispensed = self.dispensed(id, None);
        let open: Vec<u32> = (1..=course.authorized)
            .filter(|k| course.cycle(*k).0 <= today && !dispensed.contains(k))
            .collect();
        let now = course.cycle_of(today).unwrap_or(course.authorized).max(1);
        let k = match open.last() {
            Some(k) if self.rng.random_bool(0.8) => *k,
            _ => now - self.rng.random_range(0..3).min(now - 1),
        };
        let (first, last) = course.cycle(k);
        let day = match self.rng.random_range(0..10) {
            0..=2 => first,
            3..=5 if last <= today => last,
            6 => today,
            _ => {
                first + Duration::days(self.rng.random_range(0..i64::from(course.spec.cycle_days)))
            }
        };
        let drug = drug_of(&course.spec.drug);
        let provider = drug.map_or("PH-001", |d| d.providers.choose(&mut self.rng).expect("p"));
        let mut spec = ClaimSpec {
            member_id: course.spec.member_id,
            kind: Kind::Drug,
            service_date: day.min(today),
            provider: provider.to_owned(),
            diagnosis: course.spec.diagnosis.clone(),
            items: vec![],
            authorization_id: Some(id),
        };
        let mut atc = course.spec.drug.clone();
        let mut quantity = course.spec.quantity;
        let mut unit_price = course.spec.unit_price;
        if self.rng.random_bool(0.3) {
            quantity = self.rng.random_range(1..=quantity);
            unit_price = self.rng.random_range(1..=unit_price);
        }
        let mut two_items = false;
        let turn = self.turn(2);
        if turn.is_multiple_of(2) {
            match turn / 2 % 14 {
                0 => {
                    let all: Vec<i64> = self.members.keys().copied().collect();
                    spec.member_id = *all.choose(&mut self.rng).expect("member");
                }
                1 => atc = FORMULARY[1].atc.to_owned(),
                2 => spec.diagnosis = "C34.2".to_owned(),
                3 => spec.diagnosis = norm_code(&spec.diagnosis)[..3].to_owned(),
                4 if spec.diagnosis == "C34.1" => spec.diagnosis = "C34.100x001".to_owned(),
                5 => {
                    spec.service_date =
                        (course.spec.start - Duration::days(self.rng.random_range(1..4))).min(today)
                }
                6 => {
                    spec.service_date =
                        (course.cycle(course.authorized.max(1)).1 + Duration::days(1)).min(today)
                }
                7 => quantity += 1,
                8 => unit_price += 1,
                9 => spec.authorization_id = None,
                10 => {
                    spec.authorization_id =
                        Some(8_000_000 + i64::from(self.rng.random_range(0..1000_u32)))
                }
                11 => two_items = true,
                12 => spec.provider = DRUG_PROVIDERS.choose(&mut self.rng).expect("p").to_string(),
                _ => spec.service_date = today,
            }
        }
        let basic_paid = self.rng.random_range(0..=quantity * unit_price / 2);
        let markers = if self.rng.random_bool(0.1) {
            self.random_markers(drug.and_then(|d| d.biomarker))
        } else {
            vec![]
        };
        spec.items.push(ItemSpec::Drug {
            atc,
            quantity,
            unit_price,
            basic_paid,
            markers,
        });
        if two_items {
            spec.items.push(spec.items[0].clone());
        }
        let actor = format!("provider:{}", spec.provider);
        let key = self.fresh_key(&actor);
        self.send(actor, key, Request::Claim(spec), false);
    }

    // -- views and the cover ------------------------------------------------

    /// An authorisation as shown on `as_of` against the model.
    fn check_course_view(&self, id: i64, view: &Value, as_of: NaiveDate) {
        let course = &self.courses[&id];
        let here = format!("authorisation {id} as of {as_of}");
        let dispensed = self.dispensed(id, None);
        let status = course.status(as_of, true);
        let reasons: Vec<&str> = view["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .map(|r| r.as_str().expect("reason"))
            .collect();
        assert_eq!(
            (view["status"].as_str(), reasons),
            (Some(status), course.reasons.clone()),
            "{here}: status and reasons"
        );
        assert_eq!(
            (
                view["member_id"].as_i64(),
                view["product_id"].as_str(),
                view["cycles_requested"].as_u64(),
                view["cycles_authorized"].as_u64(),
                view["start_date"].as_str(),
            ),
            (
                Some(course.spec.member_id),
                course.product,
                Some(u64::from(course.spec.cycles)),
                Some(u64::from(course.authorized)),
                Some(course.spec.start.to_string().as_str()),
            ),
            "{here}: member, product, cycles requested and authorised, start"
        );
        let want_end = course.last_day().filter(|_| !course.denied);
        assert_eq!(
            view["end_date"].as_str().map(str::to_owned),
            want_end.map(|d| d.to_string()),
            "{here}: end date"
        );
        let cycles: Vec<(u64, String, String, bool)> = view["cycles"]
            .as_array()
            .expect("cycles")
            .iter()
            .map(|c| {
                (
                    c["cycle"].as_u64().expect("cycle"),
                    c["first_day"].as_str().expect("first").to_owned(),
                    c["last_day"].as_str().expect("last").to_owned(),
                    c["dispensed"].as_bool().expect("dispensed"),
                )
            })
            .collect();
        let want: Vec<(u64, String, String, bool)> = (1..=course.authorized)
            .map(|k| {
                let (first, last) = course.cycle(k);
                (
                    u64::from(k),
                    first.to_string(),
                    last.to_string(),
                    dispensed.contains(&k),
                )
            })
            .collect();
        assert_eq!(cycles, want, "{here}: cycles");
        let every = drug_of(&course.spec.drug).map_or(0, |d| d.course.followup_every);
        let due = (status == "active")
            .then(|| course.next_assessment_due(every, as_of, &dispensed))
            .flatten();
        assert_eq!(
            view["next_assessment_due"].as_str().map(str::to_owned),
            due.map(|d| d.to_string()),
            "{here}: next assessment due"
        );
        assert_eq!(
            view["followups"].as_array().map(Vec::len),
            Some(course.assessments.len()),
            "{here}: follow-ups"
        );
        assert_eq!(
            view["cancel"]["cancelled_on"].as_str().map(str::to_owned),
            course.cancelled_on.map(|d| d.to_string()),
            "{here}: cancel"
        );
    }

    /// The member's courses read today and one of them on another date.
    pub(super) fn check_member_courses(&mut self, member_id: i64) {
        let listed =
            authorizations::list_for_member(self.conn, member_id, self.today).expect("courses");
        let ids: Vec<i64> = listed.iter().map(|v| v.id).collect();
        let want: Vec<i64> = self
            .courses
            .values()
            .filter(|c| c.spec.member_id == member_id)
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, want, "member {member_id}: authorisations listed");
        for view in &listed {
            let view = serde_json::to_value(view).expect("view");
            self.check_course_view(view["id"].as_i64().expect("id"), &view, self.today);
        }
        if let Some(&id) = want.choose(&mut self.rng) {
            let start = self.courses[&id].spec.start;
            let day = start + Duration::days(self.rng.random_range(-5..120));
            let view = authorizations::view_on(self.conn, id, day).expect("course");
            self.check_course_view(id, &serde_json::to_value(&view).expect("view"), day);
        }
    }

    /// The coverage screen's courses and case reserve of one product: each
    /// active course (cycles dispensed and left, next assessment due, its
    /// own reserve) and the member's reserve, capped at the drug limit left.
    /// Returns whether there is a reserve, and whether the cap cut it.
    pub(super) fn check_cover_courses(
        &self,
        member_id: i64,
        product: &'static str,
        shown: &engine::store::enrollment::ProductCover,
    ) -> (bool, bool) {
        let today = self.today;
        let here = format!("member {member_id} {product} on {today}");
        let mut total = 0;
        let mut want = Vec::new();
        for course in self
            .courses
            .values()
            .filter(|c| c.spec.member_id == member_id && c.product == Some(product))
        {
            let dispensed = self.dispensed(course.id, None);
            let rate = self.rate_for(member_id, product, &course.spec.diagnosis);
            let reserve = course.reserve(rate, today, &dispensed);
            total += reserve;
            if course.status(today, true) == "active" {
                let every = drug_of(&course.spec.drug).map_or(0, |d| d.course.followup_every);
                let used = dispensed
                    .iter()
                    .filter(|k| **k <= course.authorized)
                    .count() as u32;
                want.push((
                    course.id,
                    course.authorized,
                    used,
                    course.authorized - used,
                    course.next_assessment_due(every, today, &dispensed),
                    reserve,
                ));
            }
        }
        let got: Vec<_> = shown
            .courses
            .iter()
            .map(|c| {
                (
                    c.authorization_id,
                    c.cycles_authorized,
                    c.cycles_dispensed,
                    c.cycles_left,
                    c.next_assessment_due,
                    c.case_reserve.0,
                )
            })
            .collect();
        assert_eq!(
            got, want,
            "{here}: courses (id, authorised, dispensed, left, next assessment due, reserve)"
        );
        let limit_left = (self.product_def(product).drug.limit
            - self.balance(member_id, product, Kind::Drug).1)
            .max(0);
        let capped = total.min(limit_left);
        assert_eq!(shown.case_reserve.0, capped, "{here}: case reserve");
        (capped > 0, capped < total)
    }

    /// Counts what a decided dispensing exercised.
    pub(super) fn note_dispensing(&mut self, claim_id: i64, before: Option<&[ModelItem]>) {
        let claim = &self.claims[&claim_id];
        let Some(course) = claim
            .spec
            .authorization_id
            .and_then(|id| self.courses.get(&id))
        else {
            return;
        };
        let mut notes = Vec::new();
        // A cycle's edges, whatever the outcome: an error by a day shows in
        // the cycle or the reasons.
        let day = claim.spec.service_date;
        if let Some(k) = course.cycle_of(day).filter(|_| before.is_none()) {
            if course.cycle(k).0 == day {
                notes.push("dispensing on a cycle's first day");
            }
            if course.cycle(k).1 == day {
                notes.push("dispensing on a cycle's last day");
            }
        }
        for (index, item) in claim.items.iter().enumerate() {
            let (true, Some(k)) = (item.paid, item.cycle) else {
                continue;
            };
            if before.is_some_and(|b| b[index].paid) {
                continue;
            }
            notes.push("dispensed in a cycle");
            let freed = self.claims.values().any(|c| {
                c.reversed
                    && c.spec.authorization_id == claim.spec.authorization_id
                    && c.items.iter().any(|i| i.paid && i.cycle == Some(k))
            });
            if freed {
                notes.push("freed cycle dispensed again");
            }
            if before.is_some_and(|b| b[index].reasons.contains(&"followup_required")) {
                notes.push("followup_required cleared on appeal");
            }
        }
        for note in notes {
            self.note(note);
        }
    }
}
