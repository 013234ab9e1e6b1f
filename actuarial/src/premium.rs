//! The gross premium: one formula, used by the main pricing, the sweep and the adverse-selection
//! solve.
//!
//! Gross premium = (expected payout + cost of capital x excess) / (1 - expense ratio), where the
//! excess is the risk measure at the pricing level minus the expected payout (never negative).

/// A premium's build-up, for whatever pool it prices (totals, or per member when the inputs are).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PremiumBuildUp {
    /// Cost of capital x excess.
    pub risk_margin: f64,
    /// Expense ratio x gross premium.
    pub expenses: f64,
    pub gross: f64,
}

pub fn gross_premium(
    expected_payout: f64,
    excess: f64,
    expense_ratio: f64,
    cost_of_capital: f64,
) -> PremiumBuildUp {
    let risk_margin = cost_of_capital * excess.max(0.0);
    let gross = (expected_payout + risk_margin) / (1.0 - expense_ratio);
    PremiumBuildUp {
        risk_margin,
        expenses: gross * expense_ratio,
        gross,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_up_adds_up() {
        // (100 + 0.06 x 50) / 0.9 = 114.44...; expenses 10% of it.
        let p = gross_premium(100.0, 50.0, 0.1, 0.06);
        assert!((p.risk_margin - 3.0).abs() < 1e-12);
        assert!((p.gross - 103.0 / 0.9).abs() < 1e-12);
        assert!((p.gross - p.expenses - p.risk_margin - 100.0).abs() < 1e-12);
        // A measure below the mean asks for no margin.
        assert_eq!(gross_premium(100.0, -5.0, 0.0, 0.1).gross, 100.0);
    }
}
