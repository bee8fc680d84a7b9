import Testing
@testable import Estimation

@Suite struct BudgetChoiceTests {
    /// T_full = 100 s, N = 10, F = 2, selection 500 s; A: 50 s/trial, B: 5 s/trial. By hand:
    /// baseline 1000 s; A: search 500 (2x), retraining 200, total 1200 (0.833x);
    /// B: search 50 (20x), retraining 200, total 750 (1.333x).
    func plan() throws -> BudgetPlan {
        try BudgetPlan(fullTrainingSeconds: 100, trials: 10, frontSize: 2, selectionSeconds: 500, strategies: [
            StrategyCost(name: "A", secondsPerTrial: 50), StrategyCost(name: "B", secondsPerTrial: 5),
        ])
    }

    @Test func arithmeticMatchesHandComputedValues() throws {
        let p = try plan()
        #expect(p.baselineSeconds == 1000)
        let a = p.rows[0], b = p.rows[1]
        #expect(a.searchSeconds == 500 && a.searchSpeedup == 2 && a.retrainingSeconds == 200 && a.totalSeconds == 1200)
        #expect(abs(a.overallSpeedup - 1000.0 / 1200) < 1e-15)
        #expect(b.searchSeconds == 50 && b.searchSpeedup == 20 && b.retrainingSeconds == 200 && b.totalSeconds == 750)
        #expect(abs(b.overallSpeedup - 1000.0 / 750) < 1e-15)
    }

    @Test func choosesTheBestTauThatFitsTheBudget() throws {
        let p = try plan()
        let taus = ["A": 0.9, "B": 0.5]
        #expect(p.choose(budgetSeconds: 2000, kendallTaus: taus)?.strategy == "A")
        #expect(p.choose(budgetSeconds: 1000, kendallTaus: taus)?.strategy == "B")
        #expect(p.choose(budgetSeconds: 749, kendallTaus: taus) == nil)
        // Equal tau: the cheaper total wins; a strategy without a tau is never chosen.
        #expect(p.choose(budgetSeconds: 2000, kendallTaus: ["A": 0.5, "B": 0.5])?.strategy == "B")
        #expect(p.choose(budgetSeconds: 2000, kendallTaus: ["A": 0.1])?.strategy == "A")
    }

    @Test func textShowsTheSeedColumns() throws {
        let text = try plan().text(kendallTaus: ["A": 0.9])
        #expect(text.contains("full training (every trial)"))
        #expect(text.contains("0.33 h"))       // A's total 1200 s
        #expect(text.contains("20.0x"))        // B's search speed-up
        #expect(text.contains("1.3x"))         // B's overall speed-up
    }
}
