import Foundation
import Search

/// A study's trials as a table (one row per trial; parameters and values as columns) for CSV,
/// and as JSON, so results land in files a person or a notebook can open.
public enum StudyExport {
    /// Column names and rows: number, state, each parameter (sorted by name), each objective
    /// value, each constraint, start and end times, duration in seconds, error.
    public static func table(record: StudyRecord, trials: [FrozenTrial]) -> (columns: [String], rows: [[String]]) {
        let parameterNames = Set(trials.flatMap(\.parameters.keys)).sorted()
        let constraintCount = trials.map { $0.constraints?.count ?? 0 }.max() ?? 0
        let formatter = ISO8601DateFormatter()
        var columns = ["number", "state"] + parameterNames.map { "param_\($0)" }
        columns += record.directions.indices.map { "value_\($0)_\(record.directions[$0].rawValue)" }
        columns += (0..<constraintCount).map { "constraint_\($0)" }
        columns += ["started_at", "completed_at", "duration_seconds", "error"]
        let rows = trials.sorted { $0.number < $1.number }.map { trial -> [String] in
            var row = [String(trial.number), trial.state.rawValue]
            row += parameterNames.map { trial.parameters[$0]?.description ?? "" }
            row += record.directions.indices.map { index in trial.values.map { String($0[index]) } ?? "" }
            row += (0..<constraintCount).map { index in
                trial.constraints.flatMap { index < $0.count ? String($0[index]) : nil } ?? ""
            }
            row.append(trial.startedAt.map(formatter.string) ?? "")
            row.append(trial.completedAt.map(formatter.string) ?? "")
            row.append(zip(trial.startedAt.map { [$0] } ?? [], trial.completedAt.map { [$0] } ?? [])
                .map { String(format: "%.3f", $1.timeIntervalSince($0)) }.first ?? "")
            row.append(trial.userAttributes["error"] ?? "")
            return row
        }
        return (columns, rows)
    }

    /// The study record and all its trials as pretty-printed JSON.
    public static func json(record: StudyRecord, trials: [FrozenTrial]) throws -> Data {
        struct Document: Encodable {
            var study: StudyRecord
            var trials: [FrozenTrial]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(Document(study: record, trials: trials.sorted { $0.number < $1.number }))
    }
}
