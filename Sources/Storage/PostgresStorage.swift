import Foundation
import Logging
import PostgresNIO
import Search

/// Where a PostgreSQL study database lives and how patient to be with it.
public struct PostgresSettings: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// Use TLS when the server offers it (`sslmode=prefer`, the default) or never (`disable`)
    /// or insist on it (`require`).
    public var tlsMode: TLSMode
    /// How long one connection attempt may take before the server counts as unreachable.
    public var connectTimeout: TimeInterval
    /// How long one attempt of one operation may take (a pool waiting for a restarting
    /// server is cut short after this and retried).
    public var operationTimeout: TimeInterval
    /// How many times an operation is tried on transient connection errors before giving up.
    public var maxAttempts: Int
    /// The most connections this process keeps open.
    public var maxConnections: Int

    public enum TLSMode: String, Sendable, Hashable { case disable, prefer, require }

    public init(
        host: String, port: Int = 5432, username: String, password: String? = nil, database: String,
        tlsMode: TLSMode = .prefer, connectTimeout: TimeInterval = 5, operationTimeout: TimeInterval = 10,
        maxAttempts: Int = 8, maxConnections: Int = 4
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tlsMode = tlsMode
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.maxAttempts = maxAttempts
        self.maxConnections = maxConnections
    }
}

/// A study storage in a PostgreSQL database, shared by workers on any number of machines.
///
/// Trial numbers come from a counter column on the study row, incremented in the same
/// statement that inserts the trial: the row lock serializes concurrent workers. Waiting
/// trials are taken with `FOR UPDATE SKIP LOCKED`, so two workers never take the same one
/// and neither waits for the other. Timestamps are the server's clock, so heartbeats of
/// workers on machines with skewed clocks compare fairly.
///
/// Connections come from a `PostgresClient` pool, which reconnects by itself after the server
/// restarts; an operation that meets a lost connection is retried with exponential backoff
/// up to `PostgresSettings.maxAttempts` times.
public final class PostgresStorage: ClosableStudyStorage {
    /// The newest schema this build reads and writes.
    public static var supportedSchemaVersion: Int { migrations.last!.version }

    public let settings: PostgresSettings
    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger = Logger(label: "edgenas.storage.postgres")
    /// Tests only: called after an attempt of an operation succeeded; throwing a transient
    /// error there stands for a commit whose reply was lost, so the operation is retried.
    nonisolated(unsafe) var afterAttempt: (@Sendable (_ operation: String, _ attempt: Int) throws -> Void)?

    /// Connects (failing within `settings.connectTimeout` when the server is unreachable)
    /// and brings the schema up to date.
    public convenience init(settings: PostgresSettings) async throws {
        try await self.init(settings: settings, migrations: Self.migrations)
    }

    /// `migrations` is injectable so that tests can exercise the migration mechanism.
    init(settings: PostgresSettings, migrations: [SchemaMigration]) async throws {
        self.settings = settings
        // A first, direct connection tells an unreachable server apart (the pool would keep
        // retrying silently) and runs the migrations before any pooled work.
        let connection = try await Self.connectWaitingForRestart(settings)
        do {
            try await Self.migrate(connection, to: migrations, logger: logger)
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: Self.tls(settings.tlsMode))
        configuration.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout * 1000))
        configuration.options.maximumConnections = settings.maxConnections
        let client = PostgresClient(configuration: configuration)
        self.client = client
        runTask = Task { await client.run() }
    }

    /// Shuts the pool down. It waits for leased connections to come back, which a connection
    /// stuck on a vanished server may never do, so the wait is bounded: a process that is done
    /// must be able to exit.
    public func close() async {
        runTask.cancel()
        let pool = runTask
        _ = try? await withDeadline(seconds: settings.operationTimeout) { await pool.value }
    }

    private static func tls(_ mode: PostgresSettings.TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }

    private static func connectionTLS(_ mode: PostgresSettings.TLSMode) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }

    /// The first connection. A server that is restarting refuses connections for a moment,
    /// then answers "the database system is starting up" (SQLSTATE 57P03) until it accepts
    /// sessions, so either is tried again for about 8 s (0.25 s, doubling): a worker started
    /// while the database restarts waits for it instead of exiting. A server that does not
    /// answer at all fails after the connect timeout, at once.
    private static func connectWaitingForRestart(_ settings: PostgresSettings) async throws -> PostgresConnection {
        var pause = 0.25
        while true {
            do {
                return try await connect(settings)
            } catch StorageError.unreachable(_, _, let reason) where isRestarting(reason) && pause <= 4 {
                try await Task.sleep(for: .seconds(pause))
                pause *= 2
            }
        }
    }

    /// Whether a failed connection's reason is a server restarting: the connection refused, or
    /// SQLSTATE 57P03 (cannot_connect_now: starting up, shutting down, in recovery).
    static func isRestarting(_ reason: String) -> Bool {
        reason.localizedCaseInsensitiveContains("refused") || reason.contains("57P03")
    }

    private static func connect(_ settings: PostgresSettings) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database,
            tls: try connectionTLS(settings.tlsMode))
        configuration.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout * 1000))
        let connectionConfiguration = configuration
        do {
            // The outer deadline also bounds name resolution and the start-up handshake,
            // which the connect timeout alone does not cover.
            return try await withDeadline(seconds: settings.connectTimeout + 1) {
                try await PostgresConnection.connect(
                    configuration: connectionConfiguration, id: 0, logger: Logger(label: "edgenas.storage.postgres"))
            }
        } catch is DeadlineExceeded {
            throw StorageError.unreachable(
                host: settings.host, port: settings.port, reason: "no answer within \(settings.connectTimeout) s")
        } catch {
            throw StorageError.unreachable(host: settings.host, port: settings.port, reason: describe(error))
        }
    }

    // MARK: schema

    static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, statements: [
            """
            CREATE TABLE edgenas_studies (
                id BIGSERIAL PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                directions TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                next_trial_number BIGINT NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE edgenas_study_attributes (
                study_id BIGINT NOT NULL REFERENCES edgenas_studies(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (study_id, key))
            """,
            """
            CREATE TABLE edgenas_trials (
                id BIGSERIAL PRIMARY KEY,
                study_id BIGINT NOT NULL REFERENCES edgenas_studies(id) ON DELETE CASCADE,
                number BIGINT NOT NULL,
                state TEXT NOT NULL,
                parameters TEXT NOT NULL,
                objective_values TEXT,
                constraint_values TEXT,
                started_at DOUBLE PRECISION,
                completed_at DOUBLE PRECISION,
                heartbeat_at DOUBLE PRECISION,
                retry_count BIGINT NOT NULL DEFAULT 0,
                UNIQUE (study_id, number))
            """,
            "CREATE INDEX edgenas_trials_by_state ON edgenas_trials (study_id, state, number)",
            """
            CREATE TABLE edgenas_trial_intermediate_values (
                trial_id BIGINT NOT NULL REFERENCES edgenas_trials(id) ON DELETE CASCADE,
                step BIGINT NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (trial_id, step))
            """,
            """
            CREATE TABLE edgenas_trial_user_attributes (
                trial_id BIGINT NOT NULL REFERENCES edgenas_trials(id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (trial_id, key))
            """,
        ]),
        // The token of the call that created or started a trial: a retry of that call after a
        // lost commit reply finds its own row instead of inserting or starting a second one.
        SchemaMigration(version: 2, statements: [
            "ALTER TABLE edgenas_trials ADD COLUMN request_token TEXT",
            "CREATE UNIQUE INDEX edgenas_trials_by_request_token ON edgenas_trials (request_token)",
        ]),
        // The same for the call that created a study: its retry after a lost commit reply
        // returns that study instead of "already exists".
        SchemaMigration(version: 3, statements: [
            "ALTER TABLE edgenas_studies ADD COLUMN request_token TEXT",
        ]),
    ]

    /// An arbitrary constant naming the advisory lock that serializes migrations of
    /// processes starting at the same time.
    private static let migrationLockKey = 0x6564_6765_6E61

    private static func migrate(_ connection: PostgresConnection, to migrations: [SchemaMigration], logger: Logger) async throws {
        let supported = migrations.last?.version ?? 0
        try await transaction(connection, logger: logger) { connection in
            try await connection.run("SELECT pg_advisory_xact_lock(\(migrationLockKey))", logger: logger)
            try await connection.run(
                "CREATE TABLE IF NOT EXISTS edgenas_schema_version (version BIGINT NOT NULL)", logger: logger
            )
            let current = try await connection.query(
                "SELECT COALESCE(MAX(version), 0) FROM edgenas_schema_version", logger: logger
            ).decode(Int.self).elements().first ?? 0
            if current > supported { throw StudyStorageError.schemaTooNew(found: current, supported: supported) }
            for migration in migrations where migration.version > current {
                for statement in migration.statements {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.run("DELETE FROM edgenas_schema_version", logger: logger)
                try await connection.run(
                    "INSERT INTO edgenas_schema_version (version) VALUES (\(migration.version))", logger: logger
                )
            }
        }
    }

    /// The schema version stored in the database.
    public func schemaVersion() async throws -> Int {
        try await withConnection("schema version") { connection, _ in
            try await connection.query("SELECT COALESCE(MAX(version), 0) FROM edgenas_schema_version", logger: self.logger)
                .decode(Int.self).elements().first ?? 0
        }
    }

    // MARK: studies

    public func createStudy(name: String, directions: [StudyDirection], attributes: [String: String]) async throws -> StudyRecord {
        let token = UUID().uuidString
        return try await inTransaction("createStudy") { connection, attempt in
            // A retry whose first attempt committed before its reply was lost finds its own study.
            if attempt > 0, try await !connection.query(
                "SELECT 1 FROM edgenas_studies WHERE name = \(name) AND request_token = \(token)", logger: self.logger
            ).collect().isEmpty, let earlier = try await self.loadStudies(connection, name: name).first {
                return earlier
            }
            let rows = try await connection.query(
                """
                INSERT INTO edgenas_studies (name, directions, created_at, request_token)
                VALUES (\(name), \(StorageCodec.encode(directions)), \(unescaped: Self.serverNow), \(token))
                ON CONFLICT (name) DO NOTHING RETURNING id, created_at
                """, logger: self.logger
            ).decode((Int, Double).self).elements()
            guard let (id, createdAt) = rows.first else { throw StudyStorageError.studyAlreadyExists(name: name) }
            for (key, value) in attributes {
                try await connection.run(
                    "INSERT INTO edgenas_study_attributes (study_id, key, value) VALUES (\(id), \(key), \(value))",
                    logger: self.logger
                )
            }
            return StudyRecord(
                id: id, name: name, directions: directions, attributes: attributes,
                createdAt: Date(timeIntervalSince1970: createdAt))
        }
    }

    public func study(named name: String) async throws -> StudyRecord {
        try await withConnection("study") { connection, _ in
            guard let study = try await self.loadStudies(connection, name: name).first else {
                throw StudyStorageError.studyNotFound(name: name)
            }
            return study
        }
    }

    public func studies() async throws -> [StudyRecord] {
        try await withConnection("studies") { connection, _ in try await self.loadStudies(connection, name: nil) }
    }

    public func deleteStudy(named name: String) async throws {
        try await withConnection("deleteStudy") { connection, attempt in
            let deleted = try await connection.query(
                "DELETE FROM edgenas_studies WHERE name = \(name) RETURNING id", logger: self.logger
            ).decode(Int.self).elements()
            // On a retry the first attempt may have deleted it already, before its reply was lost.
            if deleted.isEmpty && attempt == 0 { throw StudyStorageError.studyNotFound(name: name) }
        }
    }

    public func setStudyAttribute(studyID: Int, key: String, value: String) async throws {
        try await withConnection("setStudyAttribute") { connection, _ in
            let rows = try await connection.query(
                """
                INSERT INTO edgenas_study_attributes (study_id, key, value)
                SELECT id, \(key), \(value) FROM edgenas_studies WHERE id = \(studyID)
                ON CONFLICT (study_id, key) DO UPDATE SET value = excluded.value
                RETURNING study_id
                """, logger: self.logger
            ).decode(Int.self).elements()
            if rows.isEmpty { throw StudyStorageError.studyNotFound(name: "id \(studyID)") }
        }
    }

    // MARK: trials

    /// Inserts a trial with the study's next number; no row when the study does not exist.
    private static func insertTrialQuery(
        studyID: Int, state: TrialState, parameters: String, retryCount: Int, token: String? = nil
    ) -> PostgresQuery {
        let started = state == .running ? serverNow : "NULL"
        return """
            WITH counter AS (
                UPDATE edgenas_studies SET next_trial_number = next_trial_number + 1 WHERE id = \(studyID)
                RETURNING next_trial_number - 1 AS number)
            INSERT INTO edgenas_trials (study_id, number, state, parameters, started_at, heartbeat_at, retry_count, request_token)
            SELECT \(studyID), number, \(state.rawValue), \(parameters), \(unescaped: started), \(unescaped: started), \(retryCount), \(token)
            FROM counter
            RETURNING id, number, started_at
            """
    }

    public func enqueueTrial(studyID: Int, parameters: [String: ParameterValue]) async throws -> FrozenTrial {
        let token = UUID().uuidString
        return try await withConnection("enqueueTrial") { connection, attempt in
            if attempt > 0, let earlier = try await self.trial(withToken: token, connection) { return earlier }
            let rows = try await connection.query(
                Self.insertTrialQuery(
                    studyID: studyID, state: .waiting, parameters: StorageCodec.encode(parameters), retryCount: 0, token: token),
                logger: self.logger
            ).decode((Int, Int, Double?).self).elements()
            guard let (id, number, _) = rows.first else { throw StudyStorageError.studyNotFound(name: "id \(studyID)") }
            return FrozenTrial(id: id, number: number, state: .waiting, parameters: parameters)
        }
    }

    /// The trial an earlier attempt of the same call created or started, if its commit went
    /// through.
    private func trial(withToken token: String, _ connection: PostgresConnection) async throws -> FrozenTrial? {
        let escaped = token.replacingOccurrences(of: "'", with: "''")
        return try await loadTrials(connection, condition: "t.request_token = '\(escaped)'").first
    }

    /// Marks the study's oldest waiting trial running under `token`, if there is one; trials
    /// other transactions are taking are skipped, not waited for.
    private func startWaiting(_ connection: PostgresConnection, studyID: Int, token: String) async throws -> FrozenTrial? {
        let waiting = try await connection.query(
            """
            SELECT id FROM edgenas_trials WHERE study_id = \(studyID) AND state = 'waiting'
            ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED
            """, logger: logger
        ).decode(Int.self).elements()
        guard let waitingID = waiting.first else { return nil }
        try await connection.run(
            """
            UPDATE edgenas_trials SET state = 'running', started_at = \(unescaped: Self.serverNow),
                heartbeat_at = \(unescaped: Self.serverNow), request_token = \(token)
            WHERE id = \(waitingID)
            """, logger: logger
        )
        return try await loadTrials(connection, condition: "t.id = \(waitingID)")[0]
    }

    public func startWaitingTrial(studyID: Int) async throws -> FrozenTrial? {
        let token = UUID().uuidString
        return try await inTransaction("startWaitingTrial") { connection, attempt in
            if attempt > 0, let earlier = try await self.trial(withToken: token, connection) { return earlier }
            return try await self.startWaiting(connection, studyID: studyID, token: token)
        }
    }

    public func startTrial(studyID: Int) async throws -> FrozenTrial {
        let token = UUID().uuidString
        return try await inTransaction("startTrial") { connection, attempt in
            if attempt > 0, let earlier = try await self.trial(withToken: token, connection) { return earlier }
            if let waiting = try await self.startWaiting(connection, studyID: studyID, token: token) { return waiting }
            let rows = try await connection.query(
                Self.insertTrialQuery(studyID: studyID, state: .running, parameters: "{}", retryCount: 0, token: token),
                logger: self.logger
            ).decode((Int, Int, Double?).self).elements()
            guard let (id, number, startedAt) = rows.first else {
                throw StudyStorageError.studyNotFound(name: "id \(studyID)")
            }
            let started = StorageCodec.date(startedAt)
            return FrozenTrial(id: id, number: number, state: .running, startedAt: started, heartbeatAt: started)
        }
    }

    /// Merges `parameters` into the trial's (a waiting trial may already hold some).
    public func setParameters(trialID: Int, _ parameters: [String: ParameterValue]) async throws {
        try await updateUnfinishedTrial(
            "setParameters", trialID: trialID,
            """
            UPDATE edgenas_trials SET parameters = (parameters::jsonb || \(StorageCodec.encode(parameters))::jsonb)::text
            WHERE id = \(trialID) AND state IN ('waiting', 'running') RETURNING id
            """)
    }

    public func reportIntermediate(trialID: Int, step: Int, value: Double) async throws {
        try await updateUnfinishedTrial(
            "reportIntermediate", trialID: trialID,
            """
            INSERT INTO edgenas_trial_intermediate_values (trial_id, step, value)
            SELECT id, \(step), \(value) FROM edgenas_trials WHERE id = \(trialID) AND state IN ('waiting', 'running')
            ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value
            RETURNING trial_id
            """)
    }

    public func setUserAttribute(trialID: Int, key: String, value: String) async throws {
        try await updateUnfinishedTrial(
            "setUserAttribute", trialID: trialID,
            """
            INSERT INTO edgenas_trial_user_attributes (trial_id, key, value)
            SELECT id, \(key), \(value) FROM edgenas_trials WHERE id = \(trialID) AND state IN ('waiting', 'running')
            ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value
            RETURNING trial_id
            """)
    }

    public func finishTrial(trialID: Int, state: TrialState, values: [Double]?, constraints: [Double]?) async throws {
        guard state.isFinished else { throw StorageError.notAFinalState(trialID: trialID, state: state) }
        let valuesText = values.map(StorageCodec.encode)
        let constraintsText = constraints.map(StorageCodec.encode)
        try await withConnection("finishTrial") { connection, attempt in
            // One statement: the state and the values are committed together or not at all.
            let updated = try await connection.query(
                """
                UPDATE edgenas_trials SET state = \(state.rawValue), objective_values = \(valuesText),
                    constraint_values = \(constraintsText), completed_at = \(unescaped: Self.serverNow)
                WHERE id = \(trialID) AND state IN ('waiting', 'running') RETURNING id
                """, logger: self.logger
            ).decode(Int.self).elements()
            guard updated.isEmpty else { return }
            let current = try await self.trialState(connection, trialID)
            // A retried attempt finding exactly what it was asked to write knows that the first
            // attempt committed and only its reply was lost.
            if attempt > 0, current.state == state, current.values == valuesText { return }
            throw StudyStorageError.trialAlreadyFinished(id: trialID, state: current.state)
        }
    }

    public func heartbeat(trialID: Int) async throws {
        try await updateUnfinishedTrial(
            "heartbeat", trialID: trialID,
            """
            UPDATE edgenas_trials SET heartbeat_at = \(unescaped: Self.serverNow)
            WHERE id = \(trialID) AND state IN ('waiting', 'running') RETURNING id
            """)
    }

    public func failStaleTrials(studyID: Int, timeout: TimeInterval, maxRetries: Int) async throws -> [Int] {
        try await inTransaction("failStaleTrials") { connection, _ in
            let exists = try await connection.query(
                "SELECT id FROM edgenas_studies WHERE id = \(studyID)", logger: self.logger
            ).decode(Int.self).elements()
            if exists.isEmpty { throw StudyStorageError.studyNotFound(name: "id \(studyID)") }
            // SKIP LOCKED: a trial another worker is finishing right now is not stale.
            let stale = try await connection.query(
                """
                SELECT id, parameters, retry_count FROM edgenas_trials
                WHERE study_id = \(studyID) AND state = 'running' AND heartbeat_at < \(unescaped: Self.serverNow) - \(timeout)
                ORDER BY number FOR UPDATE SKIP LOCKED
                """, logger: self.logger
            ).decode((Int, String, Int).self).elements()
            for (id, parameters, retryCount) in stale {
                try await connection.run(
                    "UPDATE edgenas_trials SET state = 'failed', completed_at = \(unescaped: Self.serverNow) WHERE id = \(id)",
                    logger: self.logger
                )
                if retryCount < maxRetries {
                    try await connection.run(
                        Self.insertTrialQuery(
                            studyID: studyID, state: .waiting, parameters: parameters, retryCount: retryCount + 1),
                        logger: self.logger
                    )
                }
            }
            return stale.map(\.0)
        }
    }

    public func trials(studyID: Int, states: Set<TrialState>?) async throws -> [FrozenTrial] {
        try await withConnection("trials") { connection, _ in
            // One snapshot for the three reads, so values and attributes match the trials.
            try await Self.transaction(connection, logger: self.logger, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                connection in
                let exists = try await connection.query(
                    "SELECT id FROM edgenas_studies WHERE id = \(studyID)", logger: self.logger
                ).decode(Int.self).elements()
                if exists.isEmpty { throw StudyStorageError.studyNotFound(name: "id \(studyID)") }
                let trials = try await self.loadTrials(connection, condition: "t.study_id = \(studyID)")
                guard let states else { return trials }
                return trials.filter { states.contains($0.state) }
            }
        }
    }

    // MARK: helpers

    /// The server's clock in seconds since 1970 (see the type's comment).
    private static let serverNow = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"

    /// Runs a one-statement change that returns a row only when the trial exists and is not
    /// finished; otherwise reports which of the two it was.
    private func updateUnfinishedTrial(_ operation: String, trialID: Int, _ query: PostgresQuery) async throws {
        try await withConnection(operation) { connection, _ in
            let updated = try await connection.query(query, logger: self.logger).decode(Int.self).elements()
            guard updated.isEmpty else { return }
            throw StudyStorageError.trialAlreadyFinished(id: trialID, state: try await self.trialState(connection, trialID).state)
        }
    }

    /// The state and stored values of a trial; `trialNotFound` when it does not exist.
    private func trialState(_ connection: PostgresConnection, _ trialID: Int) async throws -> (state: TrialState, values: String?) {
        let rows = try await connection.query(
            "SELECT state, objective_values FROM edgenas_trials WHERE id = \(trialID)", logger: logger
        ).decode((String, String?).self).elements()
        guard let (state, values) = rows.first else { throw StudyStorageError.trialNotFound(id: trialID) }
        return (try StorageCodec.state(state, trialID: trialID), values)
    }

    private func loadStudies(_ connection: PostgresConnection, name: String?) async throws -> [StudyRecord] {
        let rows = try await connection.query(
            """
            SELECT id, name, directions, created_at FROM edgenas_studies
            WHERE \(name)::TEXT IS NULL OR name = \(name) ORDER BY id
            """, logger: logger
        ).decode((Int, String, String, Double).self).elements()
        var studies: [StudyRecord] = []
        for (id, name, directions, createdAt) in rows {
            let attributes = try await connection.query(
                "SELECT key, value FROM edgenas_study_attributes WHERE study_id = \(id)", logger: logger
            ).decode((String, String).self).elements()
            studies.append(StudyRecord(
                id: id, name: name,
                directions: try StorageCodec.decode([StudyDirection].self, from: directions, table: "edgenas_studies", id: id),
                attributes: Dictionary(attributes, uniquingKeysWith: { _, last in last }),
                createdAt: Date(timeIntervalSince1970: createdAt)))
        }
        return studies
    }

    /// Trials matching `condition` (SQL on the alias `t`, built from integers only), ordered
    /// by number, with their intermediate values and user attributes.
    private func loadTrials(_ connection: PostgresConnection, condition: String) async throws -> [FrozenTrial] {
        let table = "edgenas_trials"
        let rows = try await connection.query(
            """
            SELECT id, number, state, parameters, objective_values, constraint_values,
                   started_at, completed_at, heartbeat_at, retry_count
            FROM edgenas_trials t WHERE \(unescaped: condition) ORDER BY number
            """, logger: logger
        ).decode((Int, Int, String, String, String?, String?, Double?, Double?, Double?, Int).self).elements()
        var trials = try rows.map { id, number, state, parameters, values, constraints, started, completed, heartbeat, retries in
            FrozenTrial(
                id: id, number: number, state: try StorageCodec.state(state, trialID: id),
                parameters: try StorageCodec.decode([String: ParameterValue].self, from: parameters, table: table, id: id),
                values: try values.map { try StorageCodec.decode([Double].self, from: $0, table: table, id: id) },
                constraints: try constraints.map { try StorageCodec.decode([Double].self, from: $0, table: table, id: id) },
                startedAt: StorageCodec.date(started), completedAt: StorageCodec.date(completed),
                heartbeatAt: StorageCodec.date(heartbeat), retryCount: retries)
        }
        let index = Dictionary(uniqueKeysWithValues: trials.enumerated().map { ($1.id, $0) })
        for (trialID, step, value) in try await connection.query(
            """
            SELECT v.trial_id, v.step, v.value FROM edgenas_trial_intermediate_values v
            JOIN edgenas_trials t ON t.id = v.trial_id WHERE \(unescaped: condition)
            """, logger: logger
        ).decode((Int, Int, Double).self).elements() {
            if let position = index[trialID] { trials[position].intermediateValues[step] = value }
        }
        for (trialID, key, value) in try await connection.query(
            """
            SELECT a.trial_id, a.key, a.value FROM edgenas_trial_user_attributes a
            JOIN edgenas_trials t ON t.id = a.trial_id WHERE \(unescaped: condition)
            """, logger: logger
        ).decode((Int, String, String).self).elements() {
            if let position = index[trialID] { trials[position].userAttributes[key] = value }
        }
        return trials
    }

    // MARK: connections, transactions, retries

    /// Runs `body` on a pooled connection, retrying transient connection failures with
    /// exponential backoff. `body` receives the attempt number (0 first) so that an operation
    /// whose reply was lost can recognise its own earlier commit.
    private func withConnection<Result: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection, Int) async throws -> Result
    ) async throws -> Result {
        var attempt = 0
        while true {
            do {
                let currentAttempt = attempt
                let result = try await withDeadline(seconds: settings.operationTimeout) {
                    try await self.client.withConnection { connection in try await body(connection, currentAttempt) }
                }
                try afterAttempt?(operation, currentAttempt)
                return result
            } catch {
                guard Self.isTransient(error) else { throw Self.mapped(error, operation: operation) }
                attempt += 1
                if attempt >= settings.maxAttempts {
                    throw StorageError.connectionLost(
                        operation: operation, attempts: attempt, reason: Self.describe(error))
                }
                logger.debug("\(operation): transient error (attempt \(attempt)): \(Self.describe(error))")
                // 0.1 s, 0.2 s, 0.4 s ... capped at 2 s: a restarting server is back within seconds.
                let backoff = min(2.0, 0.1 * pow(2.0, Double(attempt - 1)))
                try await Task.sleep(for: .seconds(backoff))
            }
        }
    }

    private func inTransaction<Result: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection, Int) async throws -> Result
    ) async throws -> Result {
        try await withConnection(operation) { connection, attempt in
            try await Self.transaction(connection, logger: self.logger) { connection in try await body(connection, attempt) }
        }
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK when `body` throws, whose error is rethrown as is
    /// (unlike `PostgresConnection.withTransaction`, which wraps it).
    private static func transaction<Result: Sendable>(
        _ connection: PostgresConnection, logger: Logger, begin: PostgresQuery = "BEGIN",
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await connection.run(begin, logger: logger)
        let result: Result
        do {
            result = try await body(connection)
        } catch {
            try? await connection.run("ROLLBACK", logger: logger)
            throw error
        }
        try await connection.run("COMMIT", logger: logger)
        return result
    }

    /// Errors worth another attempt: the connection broke or the pool could not get one in
    /// time (server restarting), or the server asked the client to try again.
    static func isTransient(_ error: any Error) -> Bool {
        if error is DeadlineExceeded || error is ChannelError || error is IOError { return true }
        guard let error = error as? PSQLError else {
            // The pool's own errors (circuit breaker after a long outage) are not public types.
            return String(describing: type(of: error)).contains("ConnectionPoolError")
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .queryCancelled:
            return true
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot
            // connect now (starting up); 40001/40P01: serialization failure, deadlock;
            // 53300: too many connections.
            if state.hasPrefix("08") || ["57P01", "57P02", "57P03", "40001", "40P01", "53300"].contains(state) { return true }
            // A retried trial write met the token that its abandoned earlier attempt committed
            // meanwhile: the next attempt finds that trial by its token.
            return state == "23505" && error.serverInfo?[.constraintName] == "edgenas_trials_by_request_token"
        default:
            return false
        }
    }

    private static func mapped(_ error: any Error, operation: String) -> any Error {
        if error is StudyStorageError || error is StorageError || error is CancellationError { return error }
        return StorageError.database(operation: operation, reason: describe(error))
    }

    /// A readable reason: PSQLError's own description hides everything on purpose (so that
    /// servers' messages are not shown to end users by accident); here the user is the
    /// database's owner, and needs the server's message or the socket error.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: error) }
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        }
        if let underlying = error.underlying { return String(describing: underlying) }
        return "\(error.code)"
    }
}

extension PostgresConnection {
    /// Runs a statement whose rows (if any) are not needed; draining them frees the connection.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }
}

extension AsyncSequence where Self: Sendable {
    /// Every element of the sequence (decoded rows, here).
    func elements() async throws -> [Element] {
        var elements: [Element] = []
        for try await element in self { elements.append(element) }
        return elements
    }
}

/// An operation that did not finish within its deadline.
struct DeadlineExceeded: Error {}

/// Runs `body`, cancelling it and throwing `DeadlineExceeded` after `seconds`.
///
/// The caller gets control back at the deadline even when `body` ignores cancellation (a
/// connection-pool wait during a server restart can): a task group would wait for its child
/// before returning, so `body` runs in a task of its own that is cancelled and left to finish.
/// Callers retry through `withConnection`, whose attempt counter lets a retried write recognise
/// a commit of the abandoned attempt.
func withDeadline<Result: Sendable>(seconds: TimeInterval, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
    let race = DeadlineRace<Result>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(
                continuation,
                work: Task {
                    do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                },
                timer: Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    race.finish(.failure(DeadlineExceeded()))
                })
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of the work, the timer and the caller's cancellation to finish resumes the caller;
/// the others are cancelled and their results dropped.
private final class DeadlineRace<Value: Sendable>: @unchecked Sendable {
    // All state below is guarded by `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Value, any Error>?
    private var outcome: Swift.Result<Value, any Error>?
    private var tasks: [Task<Void, Never>] = []

    func start(_ continuation: CheckedContinuation<Value, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        lock.lock()
        if let outcome {
            // Finished (or cancelled) before the continuation was installed.
            lock.unlock()
            work.cancel()
            timer.cancel()
            continuation.resume(with: outcome)
            return
        }
        self.continuation = continuation
        tasks = [work, timer]
        lock.unlock()
    }

    func finish(_ result: Swift.Result<Value, any Error>) {
        lock.lock()
        guard outcome == nil else {
            lock.unlock()
            return
        }
        outcome = result
        let waiting = continuation
        continuation = nil
        let running = tasks
        tasks = []
        lock.unlock()
        for task in running { task.cancel() }
        waiting?.resume(with: result)
    }
}
