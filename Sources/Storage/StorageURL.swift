import Foundation
import Search

/// A parsed storage URL: which engine holds the studies, and where.
///
/// - `sqlite:///absolute/path/study.db`: a SQLite file (three slashes: the path is absolute);
/// - `sqlite://relative/path/study.db`: a SQLite file relative to the working directory;
/// - `postgresql://user:password@host:port/database` (or `postgres://`), with an optional
///   `?sslmode=disable|prefer|require` (default `prefer`) and `connect_timeout=SECONDS`;
/// - `memory:`: an in-memory SQLite database private to this process.
public enum StorageURL: Sendable, Hashable {
    case sqlite(path: String)
    case postgres(PostgresSettings)
    case memory

    public init(_ text: String) throws {
        func invalid(_ reason: String) -> StorageError { .invalidURL(url: redactingPassword(in: text), reason: reason) }
        if text == "memory:" || text == "memory://" {
            self = .memory
            return
        }
        if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty, path != "/" else { throw invalid("the SQLite URL names no file") }
            self = .sqlite(path: path.removingPercentEncoding ?? path)
            return
        }
        guard text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") else {
            let scheme = text.split(separator: ":", maxSplits: 1).first.map(String.init) ?? text
            throw invalid(text.contains(":") ? "unknown scheme '\(scheme)'" : "no scheme")
        }
        guard let components = URLComponents(string: text) else { throw invalid("not a URL") }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user name") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw invalid("no database name after the host") }
        var settings = PostgresSettings(
            host: host, port: components.port ?? 5432, username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database)
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(PostgresSettings.TLSMode.init(rawValue:)) else {
                    throw invalid("sslmode must be disable, prefer or require, not '\(item.value ?? "")'")
                }
                settings.tlsMode = mode
            case "connect_timeout":
                guard let seconds = item.value.flatMap(Double.init), seconds > 0 else {
                    throw invalid("connect_timeout must be a positive number of seconds, not '\(item.value ?? "")'")
                }
                settings.connectTimeout = seconds
            default:
                throw invalid("unknown option '\(item.name)' (known: sslmode, connect_timeout)")
            }
        }
        self = .postgres(settings)
    }
}

/// Opens the study storage a URL names (see `StorageURL`), creating the SQLite file or the
/// schema when missing.
public func makeStudyStorage(url: String) async throws -> any ClosableStudyStorage {
    switch try StorageURL(url) {
    case .memory: try SQLiteStorage()
    case .sqlite(let path): try SQLiteStorage(path: path)
    case .postgres(let settings): try await PostgresStorage(settings: settings)
    }
}

/// Runs `body` on the storage at `url` and closes it before returning or throwing, so a command
/// never exits with a connection (or SQLite's WAL) still open. A `defer` cannot await, and a
/// `Task` started from one may never run before the process ends.
public func withStudyStorage<Result>(url: String, _ body: (any ClosableStudyStorage) async throws -> Result) async throws -> Result {
    let storage = try await makeStudyStorage(url: url)
    do {
        let result = try await body(storage)
        await storage.close()
        return result
    } catch {
        await storage.close()
        throw error
    }
}
