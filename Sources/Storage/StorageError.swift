import Foundation
import Search

/// Errors specific to database-backed storages (the engine-neutral ones are `StudyStorageError`).
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The storage URL could not be understood.
    case invalidURL(url: String, reason: String)
    /// A SQLite database file could not be opened or created.
    case cannotOpenDatabase(path: String, reason: String)
    /// The PostgreSQL server could not be reached or refused the connection.
    case unreachable(host: String, port: Int, reason: String)
    /// An operation kept failing on a lost connection after every retry.
    case connectionLost(operation: String, attempts: Int, reason: String)
    /// `finishTrial` was asked to leave the trial in a state that is not a final one.
    case notAFinalState(trialID: Int, state: TrialState)
    /// A stored row could not be decoded (written by something else, or damaged).
    case corruptRecord(table: String, id: Int, reason: String)
    /// The database reported an error that is not one of the above.
    case database(operation: String, reason: String)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            "invalid storage URL '\(url)': \(reason); expected sqlite:///absolute/path.db, sqlite://relative/path.db, "
                + "postgresql://user:password@host:port/database (or postgres://...) or memory:"
        case .cannotOpenDatabase(let path, let reason):
            "cannot open SQLite database '\(path)': \(reason)"
        case .unreachable(let host, let port, let reason):
            "cannot connect to PostgreSQL at \(host):\(port): \(reason)"
        case .connectionLost(let operation, let attempts, let reason):
            "\(operation) failed after \(attempts) attempts on a lost database connection: \(reason)"
        case .notAFinalState(let trialID, let state):
            "trial id \(trialID) cannot be finished as '\(state.rawValue)'; expected complete, pruned or failed"
        case .corruptRecord(let table, let id, let reason):
            "row \(id) of table \(table) cannot be read: \(reason)"
        case .database(let operation, let reason):
            "\(operation) failed: \(reason)"
        }
    }
}
