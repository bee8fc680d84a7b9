// Choosing a strategy by the time budget of a whole search, and the planner's table.
import Foundation

extension BudgetPlan {
    /// The strategy a search should use under `budgetSeconds` of total time (search + retraining
    /// the front + selection): the highest Kendall tau among the rows whose total fits, ties to
    /// the cheaper; nil when none fits. `kendallTaus` maps strategy names to their tau (a row
    /// without one is not a candidate).
    public func choose(budgetSeconds: Double, kendallTaus: [String: Double]) -> BudgetPlanRow? {
        rows.filter { $0.totalSeconds <= budgetSeconds && (kendallTaus[$0.strategy].map { !$0.isNaN } ?? false) }
            .min { a, b in
                let ta = kendallTaus[a.strategy]!, tb = kendallTaus[b.strategy]!
                return ta != tb ? ta > tb : a.totalSeconds < b.totalSeconds
            }
    }

    /// The speed-up table: one line for the search with full training of every trial, then one
    /// per strategy (in `rows` order) with its search training time, search speed-up, post-search
    /// retraining of the front, total (selection included) and overall speed-up.
    public func text(kendallTaus: [String: Double] = [:]) -> String {
        func hours(_ seconds: Double) -> String { String(format: "%.2f h", seconds / 3600) }
        var lines = [String(format: "%-30@ %7@ %12@ %9@ %12@ %12@ %9@", "strategy", "tau", "search", "speed-up", "retraining",
                            "total", "overall")]
        lines.append(String(format: "%-30@ %7@ %12@ %9@ %12@ %12@ %9@", "full training (every trial)", "1.000", hours(baselineSeconds),
                            "1.0x", hours(0), hours(baselineSeconds), "1.0x"))
        for row in rows {
            let tau = kendallTaus[row.strategy].map { String(format: "%.3f", $0) } ?? "-"
            lines.append(String(format: "%-30@ %7@ %12@ %8.1fx %12@ %12@ %8.1fx", row.strategy, tau, hours(row.searchSeconds),
                                row.searchSpeedup, hours(row.retrainingSeconds), hours(row.totalSeconds), row.overallSpeedup))
        }
        lines.append(String(format: "N = %d trials, full training %.1f s, front of %d retrained, selection %@ in every total",
                            trials, fullTrainingSeconds, frontSize, hours(selectionSeconds)))
        return lines.joined(separator: "\n") + "\n"
    }
}
