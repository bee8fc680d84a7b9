// From a selection to the budget planner's inputs.
import Estimation

extension SelectionResult {
    /// Kendall tau of every ranked strategy, by name.
    public var kendallTaus: [String: Double] {
        Dictionary(table.rows.map { ($0.name, $0.kendallTau) }, uniquingKeysWith: { first, _ in first })
    }

    /// Per-trial cost of every ranked strategy (rank-table order) in a search whose full
    /// training takes `fullTrainingSeconds`: learning-curve strategies train a fraction of a
    /// run, so their measured cost is scaled by fullTrainingSeconds / the references' mean;
    /// proxies and predictors keep their measured seconds. Every strategy retrains the front.
    public func strategyCosts(fullTrainingSeconds: Double) -> [StrategyCost] {
        let scale = fullTrainingSeconds / meanFullTrainingSeconds
        return table.rows.compactMap { row in
            guard let strategy = strategy(named: row.name) else { return nil }
            let seconds = strategy.kind == .learningCurve ? row.secondsPerArchitecture * scale : row.secondsPerArchitecture
            return StrategyCost(name: row.name, secondsPerTrial: seconds, retrainsFront: true)
        }
    }

    /// The planner's projection of `trials` trials with every strategy, the selection's own
    /// cost charged to each.
    public func plan(fullTrainingSeconds: Double, trials: Int, frontSize: Int) throws -> BudgetPlan {
        try BudgetPlan(fullTrainingSeconds: fullTrainingSeconds, trials: trials, frontSize: frontSize,
                       selectionSeconds: selectionSeconds, strategies: strategyCosts(fullTrainingSeconds: fullTrainingSeconds))
    }
}
