import Foundation
import GRDB
import Search

/// A study storage in one SQLite file, shared by any number of processes on one machine.
///
/// The file is opened in WAL mode (readers never block the writer) with a busy timeout, and
/// every write runs in an `IMMEDIATE` transaction: the write lock is taken when the
/// transaction begins, so two processes can never read the same trial counter or the same
/// waiting trial and both act on it.
public final class SQLiteStorage: ClosableStudyStorage {
    /// The newest schema this build reads and writes.
    public static var supportedSchemaVersion: Int { migrations.last!.version }

    private let writer: any DatabaseWriter
    /// Where the database lives, for messages (`:memory:` for an in-memory database).
    public let path: String

    /// Opens (creating it when missing) the database file at `path`.
    /// - Parameter busyTimeout: how long a write waits for another process's write lock.
    public convenience init(path: String, busyTimeout: TimeInterval = 60) throws {
        try self.init(path: path, busyTimeout: busyTimeout, migrations: Self.migrations)
    }

    /// An in-memory database, private to this process (for tests and throwaway studies).
    public convenience init() throws {
        try self.init(path: nil, busyTimeout: 0, migrations: Self.migrations)
    }

    /// `migrations` is injectable so that tests can exercise the migration mechanism with a
    /// future version.
    init(path: String?, busyTimeout: TimeInterval, migrations: [SchemaMigration]) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        self.path = path ?? ":memory:"
        do {
            if let path {
                writer = try DatabasePool(path: path, configuration: configuration)
            } else {
                writer = try DatabaseQueue(configuration: configuration)
            }
        } catch {
            throw StorageError.cannotOpenDatabase(path: path ?? ":memory:", reason: Self.reason(error))
        }
        try migrate(to: migrations)
    }

    public func close() async {
        try? (writer as? DatabasePool)?.close()
        try? (writer as? DatabaseQueue)?.close()
    }

    // MARK: schema

    static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, statements: [
            """
            CREATE TABLE edgenas_studies (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                directions TEXT NOT NULL,
                created_at REAL NOT NULL,
                next_trial_number INTEGER NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE edgenas_study_attributes (
                study_id INTEGER NOT NULL REFERENCES edgenas_studies(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (study_id, key))
            """,
            """
            CREATE TABLE edgenas_trials (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                study_id INTEGER NOT NULL REFERENCES edgenas_studies(id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                state TEXT NOT NULL,
                parameters TEXT NOT NULL,
                objective_values TEXT,
                constraint_values TEXT,
                started_at REAL,
                completed_at REAL,
                heartbeat_at REAL,
                retry_count INTEGER NOT NULL DEFAULT 0,
                UNIQUE (study_id, number))
            """,
            "CREATE INDEX edgenas_trials_by_state ON edgenas_trials (study_id, state, number)",
            """
            CREATE TABLE edgenas_trial_intermediate_values (
                trial_id INTEGER NOT NULL REFERENCES edgenas_trials(id) ON DELETE CASCADE,
                step INTEGER NOT NULL,
                value REAL,
                PRIMARY KEY (trial_id, step))
            """,
            """
            CREATE TABLE edgenas_trial_user_attributes (
                trial_id INTEGER NOT NULL REFERENCES edgenas_trials(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (trial_id, key))
            """,
        ]),
    ]

    /// Brings the schema up to the last of `migrations`, in one transaction so that a process
    /// opening the file at the same time sees either the old or the new schema.
    private func migrate(to migrations: [SchemaMigration]) throws {
        let supported = migrations.last?.version ?? 0
        try writeSynchronously("schema migration") { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS edgenas_schema_version (version INTEGER NOT NULL)")
            let current = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM edgenas_schema_version") ?? 0
            if current > supported {
                throw StudyStorageError.schemaTooNew(found: current, supported: supported)
            }
            for migration in migrations where migration.version > current {
                for statement in migration.statements { try db.execute(sql: statement) }
                try db.execute(sql: "DELETE FROM edgenas_schema_version")
                try db.execute(sql: "INSERT INTO edgenas_schema_version (version) VALUES (?)", arguments: [migration.version])
            }
        }
    }

    /// The schema version stored in the file.
    public func schemaVersion() async throws -> Int {
        try await read("schema version") { db in
            try Int.fetchOne(db, sql: "SELECT MAX(version) FROM edgenas_schema_version") ?? 0
        }
    }

    // MARK: studies

    public func createStudy(name: String, directions: [StudyDirection], attributes: [String: String]) async throws -> StudyRecord {
        let now = Date()
        return try await write("createStudy") { db in
            if try Int.fetchOne(db, sql: "SELECT id FROM edgenas_studies WHERE name = ?", arguments: [name]) != nil {
                throw StudyStorageError.studyAlreadyExists(name: name)
            }
            try db.execute(
                sql: "INSERT INTO edgenas_studies (name, directions, created_at) VALUES (?, ?, ?)",
                arguments: [name, StorageCodec.encode(directions), now.timeIntervalSince1970])
            let id = Int(db.lastInsertedRowID)
            for (key, value) in attributes {
                try db.execute(
                    sql: "INSERT INTO edgenas_study_attributes (study_id, key, value) VALUES (?, ?, ?)",
                    arguments: [id, key, value])
            }
            return StudyRecord(id: id, name: name, directions: directions, attributes: attributes, createdAt: now)
        }
    }

    public func study(named name: String) async throws -> StudyRecord {
        try await read("study") { db in
            guard let study = try Self.loadStudies(db, name: name).first else {
                throw StudyStorageError.studyNotFound(name: name)
            }
            return study
        }
    }

    public func studies() async throws -> [StudyRecord] {
        try await read("studies") { db in try Self.loadStudies(db, name: nil) }
    }

    public func deleteStudy(named name: String) async throws {
        try await write("deleteStudy") { db in
            try db.execute(sql: "DELETE FROM edgenas_studies WHERE name = ?", arguments: [name])
            if db.changesCount == 0 { throw StudyStorageError.studyNotFound(name: name) }
        }
    }

    public func setStudyAttribute(studyID: Int, key: String, value: String) async throws {
        try await write("setStudyAttribute") { db in
            try Self.requireStudy(db, studyID)
            try db.execute(
                sql: """
                    INSERT INTO edgenas_study_attributes (study_id, key, value) VALUES (?, ?, ?)
                    ON CONFLICT (study_id, key) DO UPDATE SET value = excluded.value
                    """,
                arguments: [studyID, key, value])
        }
    }

    // MARK: trials

    public func enqueueTrial(studyID: Int, parameters: [String: ParameterValue]) async throws -> FrozenTrial {
        try await write("enqueueTrial") { db in
            try Self.requireStudy(db, studyID)
            let number = try Self.takeTrialNumber(db, studyID)
            try db.execute(
                sql: "INSERT INTO edgenas_trials (study_id, number, state, parameters) VALUES (?, ?, 'waiting', ?)",
                arguments: [studyID, number, StorageCodec.encode(parameters)])
            return FrozenTrial(id: Int(db.lastInsertedRowID), number: number, state: .waiting, parameters: parameters)
        }
    }

    /// Marks the study's oldest waiting trial running, if there is one.
    private static func startWaiting(_ db: Database, _ studyID: Int, now: Double) throws -> FrozenTrial? {
        try requireStudy(db, studyID)
        let waitingID = try Int.fetchOne(
            db, sql: "SELECT id FROM edgenas_trials WHERE study_id = ? AND state = 'waiting' ORDER BY number LIMIT 1",
            arguments: [studyID])
        guard let waitingID else { return nil }
        try db.execute(
            sql: "UPDATE edgenas_trials SET state = 'running', started_at = ?, heartbeat_at = ? WHERE id = ?",
            arguments: [now, now, waitingID])
        return try loadTrials(db, sql: "t.id = ?", arguments: [waitingID])[0]
    }

    public func startWaitingTrial(studyID: Int) async throws -> FrozenTrial? {
        let now = Date().timeIntervalSince1970
        return try await write("startWaitingTrial") { db in try Self.startWaiting(db, studyID, now: now) }
    }

    public func startTrial(studyID: Int) async throws -> FrozenTrial {
        let now = Date().timeIntervalSince1970
        return try await write("startTrial") { db in
            if let waiting = try Self.startWaiting(db, studyID, now: now) { return waiting }
            let number = try Self.takeTrialNumber(db, studyID)
            try db.execute(
                sql: """
                    INSERT INTO edgenas_trials (study_id, number, state, parameters, started_at, heartbeat_at)
                    VALUES (?, ?, 'running', '{}', ?, ?)
                    """,
                arguments: [studyID, number, now, now])
            return FrozenTrial(
                id: Int(db.lastInsertedRowID), number: number, state: .running,
                startedAt: Date(timeIntervalSince1970: now), heartbeatAt: Date(timeIntervalSince1970: now))
        }
    }

    /// Merges `parameters` into the trial's (a waiting trial may already hold some).
    public func setParameters(trialID: Int, _ parameters: [String: ParameterValue]) async throws {
        try await write("setParameters") { db in
            let (current, _) = try Self.requireUnfinishedTrial(db, trialID)
            let merged = current.merging(parameters) { _, new in new }
            try db.execute(
                sql: "UPDATE edgenas_trials SET parameters = ? WHERE id = ?",
                arguments: [StorageCodec.encode(merged), trialID])
        }
    }

    public func reportIntermediate(trialID: Int, step: Int, value: Double) async throws {
        try await write("reportIntermediate") { db in
            _ = try Self.requireUnfinishedTrial(db, trialID)
            try db.execute(
                sql: """
                    INSERT INTO edgenas_trial_intermediate_values (trial_id, step, value) VALUES (?, ?, ?)
                    ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value
                    """,
                arguments: [trialID, step, value.isNaN ? nil : value])
        }
    }

    public func setUserAttribute(trialID: Int, key: String, value: String) async throws {
        try await write("setUserAttribute") { db in
            _ = try Self.requireUnfinishedTrial(db, trialID)
            try db.execute(
                sql: """
                    INSERT INTO edgenas_trial_user_attributes (trial_id, key, value) VALUES (?, ?, ?)
                    ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value
                    """,
                arguments: [trialID, key, value])
        }
    }

    public func finishTrial(trialID: Int, state: TrialState, values: [Double]?, constraints: [Double]?) async throws {
        guard state.isFinished else { throw StorageError.notAFinalState(trialID: trialID, state: state) }
        let now = Date().timeIntervalSince1970
        try await write("finishTrial") { db in
            _ = try Self.requireUnfinishedTrial(db, trialID)
            try db.execute(
                sql: """
                    UPDATE edgenas_trials SET state = ?, objective_values = ?, constraint_values = ?, completed_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    state.rawValue, values.map(StorageCodec.encode), constraints.map(StorageCodec.encode), now, trialID,
                ])
        }
    }

    public func heartbeat(trialID: Int) async throws {
        let now = Date().timeIntervalSince1970
        try await write("heartbeat") { db in
            _ = try Self.requireUnfinishedTrial(db, trialID)
            try db.execute(sql: "UPDATE edgenas_trials SET heartbeat_at = ? WHERE id = ?", arguments: [now, trialID])
        }
    }

    public func failStaleTrials(studyID: Int, timeout: TimeInterval, maxRetries: Int) async throws -> [Int] {
        let now = Date().timeIntervalSince1970
        return try await write("failStaleTrials") { db in
            try Self.requireStudy(db, studyID)
            let stale = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, parameters, retry_count FROM edgenas_trials
                    WHERE study_id = ? AND state = 'running' AND heartbeat_at < ? ORDER BY number
                    """,
                arguments: [studyID, now - timeout])
            var failed: [Int] = []
            for row in stale {
                let id: Int = row["id"]
                let retryCount: Int = row["retry_count"]
                try db.execute(
                    sql: "UPDATE edgenas_trials SET state = 'failed', completed_at = ? WHERE id = ?", arguments: [now, id])
                failed.append(id)
                guard retryCount < maxRetries else { continue }
                let number = try Self.takeTrialNumber(db, studyID)
                try db.execute(
                    sql: """
                        INSERT INTO edgenas_trials (study_id, number, state, parameters, retry_count)
                        VALUES (?, ?, 'waiting', ?, ?)
                        """,
                    arguments: [studyID, number, row["parameters"] as String, retryCount + 1])
            }
            return failed
        }
    }

    public func trials(studyID: Int, states: Set<TrialState>?) async throws -> [FrozenTrial] {
        try await read("trials") { db in
            try Self.requireStudy(db, studyID)
            let trials = try Self.loadTrials(db, sql: "t.study_id = ?", arguments: [studyID])
            guard let states else { return trials }
            return trials.filter { states.contains($0.state) }
        }
    }

    // MARK: helpers

    private static func requireStudy(_ db: Database, _ studyID: Int) throws {
        if try Int.fetchOne(db, sql: "SELECT id FROM edgenas_studies WHERE id = ?", arguments: [studyID]) == nil {
            throw StudyStorageError.studyNotFound(name: "id \(studyID)")
        }
    }

    /// The next trial number of the study. Only called inside a write transaction, whose
    /// lock keeps the read and the increment together.
    private static func takeTrialNumber(_ db: Database, _ studyID: Int) throws -> Int {
        let number = try Int.fetchOne(
            db, sql: "SELECT next_trial_number FROM edgenas_studies WHERE id = ?", arguments: [studyID]) ?? 0
        try db.execute(
            sql: "UPDATE edgenas_studies SET next_trial_number = ? WHERE id = ?", arguments: [number + 1, studyID])
        return number
    }

    /// The trial's parameters and state, or an error when it is missing or already finished.
    private static func requireUnfinishedTrial(_ db: Database, _ trialID: Int) throws -> ([String: ParameterValue], TrialState) {
        guard let row = try Row.fetchOne(
            db, sql: "SELECT state, parameters FROM edgenas_trials WHERE id = ?", arguments: [trialID])
        else { throw StudyStorageError.trialNotFound(id: trialID) }
        let state = try StorageCodec.state(row["state"], trialID: trialID)
        if state.isFinished { throw StudyStorageError.trialAlreadyFinished(id: trialID, state: state) }
        let parameters = try StorageCodec.decode(
            [String: ParameterValue].self, from: row["parameters"], table: "edgenas_trials", id: trialID)
        return (parameters, state)
    }

    private static func loadStudies(_ db: Database, name: String?) throws -> [StudyRecord] {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT id, name, directions, created_at FROM edgenas_studies WHERE (? IS NULL OR name = ?) ORDER BY id",
            arguments: [name, name])
        return try rows.map { row in
            let id: Int = row["id"]
            var attributes: [String: String] = [:]
            for attribute in try Row.fetchAll(
                db, sql: "SELECT key, value FROM edgenas_study_attributes WHERE study_id = ?", arguments: [id])
            {
                attributes[attribute["key"]] = attribute["value"]
            }
            return StudyRecord(
                id: id, name: row["name"],
                directions: try StorageCodec.decode([StudyDirection].self, from: row["directions"], table: "edgenas_studies", id: id),
                attributes: attributes, createdAt: Date(timeIntervalSince1970: row["created_at"]))
        }
    }

    /// Trials matching `condition` (on the alias `t`), ordered by number, with their
    /// intermediate values and user attributes.
    private static func loadTrials(_ db: Database, sql condition: String, arguments: StatementArguments) throws -> [FrozenTrial] {
        var trials = try Row.fetchAll(
            db,
            sql: """
                SELECT id, number, state, parameters, objective_values, constraint_values,
                       started_at, completed_at, heartbeat_at, retry_count
                FROM edgenas_trials t WHERE \(condition) ORDER BY number
                """,
            arguments: arguments
        ).map { row -> FrozenTrial in
            let id: Int = row["id"]
            let table = "edgenas_trials"
            return FrozenTrial(
                id: id, number: row["number"], state: try StorageCodec.state(row["state"], trialID: id),
                parameters: try StorageCodec.decode([String: ParameterValue].self, from: row["parameters"], table: table, id: id),
                values: try (row["objective_values"] as String?).map { try StorageCodec.decode([Double].self, from: $0, table: table, id: id) },
                constraints: try (row["constraint_values"] as String?).map { try StorageCodec.decode([Double].self, from: $0, table: table, id: id) },
                startedAt: StorageCodec.date(row["started_at"]), completedAt: StorageCodec.date(row["completed_at"]),
                heartbeatAt: StorageCodec.date(row["heartbeat_at"]), retryCount: row["retry_count"])
        }
        let index = Dictionary(uniqueKeysWithValues: trials.enumerated().map { ($1.id, $0) })
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT v.trial_id, v.step, v.value FROM edgenas_trial_intermediate_values v
                JOIN edgenas_trials t ON t.id = v.trial_id WHERE \(condition)
                """,
            arguments: arguments)
        {
            if let position = index[row["trial_id"]] {
                trials[position].intermediateValues[row["step"]] = (row["value"] as Double?) ?? .nan
            }
        }
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT a.trial_id, a.key, a.value FROM edgenas_trial_user_attributes a
                JOIN edgenas_trials t ON t.id = a.trial_id WHERE \(condition)
                """,
            arguments: arguments)
        {
            if let position = index[row["trial_id"]] { trials[position].userAttributes[row["key"]] = row["value"] }
        }
        return trials
    }

    // MARK: transactions

    /// Runs `body` in an IMMEDIATE transaction (see the type's comment), mapping engine
    /// errors to `StorageError` while letting the storage's own errors through.
    private func write<Result: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        do {
            return try await writer.writeWithoutTransaction { db in try Self.immediate(db, body) }
        } catch let error as DatabaseError {
            throw StorageError.database(operation: operation, reason: Self.reason(error))
        }
    }

    private func writeSynchronously<Result>(_ operation: String, _ body: (Database) throws -> Result) throws -> Result {
        do {
            return try writer.writeWithoutTransaction { db in try Self.immediate(db, body) }
        } catch let error as DatabaseError {
            throw StorageError.database(operation: operation, reason: Self.reason(error))
        }
    }

    private static func immediate<Result>(_ db: Database, _ body: (Database) throws -> Result) throws -> Result {
        var result: Result?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        return result!
    }

    private func read<Result: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        do {
            return try await writer.read(body)
        } catch let error as DatabaseError {
            throw StorageError.database(operation: operation, reason: Self.reason(error))
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? error.description }
        return String(describing: error)
    }
}
