import Foundation
import Logging
import PostgresNIO
import Search
import Testing
@testable import Storage

@Suite("PostgreSQL storage", .enabled(if: TestEngines.postgresURL != nil, TestEngines.postgresSkipMessage))
struct PostgresStorageTests {
    @Test func numbering() async throws { try await StorageSemantics.numbering(TestEngines.postgres()) }
    @Test func waitingTrialsFirst() async throws { try await StorageSemantics.waitingTrialsFirst(TestEngines.postgres()) }
    @Test func finishOnce() async throws { try await StorageSemantics.finishOnce(TestEngines.postgres()) }
    @Test func heartbeats() async throws { try await StorageSemantics.heartbeats(TestEngines.postgres()) }
    @Test func staleTrialsFailedAndRequeued() async throws {
        try await StorageSemantics.staleTrialsFailedAndRequeued(TestEngines.postgres())
    }
    @Test func retryLimit() async throws { try await StorageSemantics.retryLimit(TestEngines.postgres()) }
    @Test func deletingStudies() async throws { try await StorageSemantics.deletingStudies(TestEngines.postgres()) }
    @Test func attributes() async throws { try await StorageSemantics.attributes(TestEngines.postgres()) }

    @Test func openedFromURL() async throws {
        let storage = try await makeStudyStorage(url: try #require(TestEngines.postgresURL))
        #expect(storage is PostgresStorage)
        let name = TestEngines.uniqueStudyName("url")
        _ = try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        #expect(try await storage.study(named: name).name == name)
        await storage.close()
    }

    @Test func wrongPasswordIsReportedWithTheServerMessage() async throws {
        var settings = try TestEngines.postgresSettings()
        settings.password = "definitely-not-the-password"
        let error = await #expect(throws: StorageError.self) { _ = try await PostgresStorage(settings: settings) }
        guard case .unreachable(let host, let port, let reason) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(host == settings.host && port == settings.port)
        #expect(reason.contains("authentication"))
    }

    // MARK: schema versions (each in a database of its own, not to disturb the other tests)

    /// The version after the package's newest one.
    private static let latest = PostgresStorage.migrations.last!.version
    private static let version2 = SchemaMigration(version: latest + 1, statements: [
        "CREATE TABLE edgenas_test_future (id BIGINT PRIMARY KEY)",
        "INSERT INTO edgenas_test_future (id) VALUES (42)",
    ])

    /// Runs `body` with settings naming a new, empty database, dropped afterwards.
    private func withScratchDatabase(_ body: (PostgresSettings) async throws -> Void) async throws {
        let settings = try TestEngines.postgresSettings()
        let scratch = "edgenas_scratch_" + UUID().uuidString.prefix(8).lowercased()
        let logger = Logger(label: "edgenas.tests")
        let configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: .disable)
        let admin = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        try await admin.run(PostgresQuery(unsafeSQL: "CREATE DATABASE \(scratch)"), logger: logger)
        var scratchSettings = settings
        scratchSettings.database = scratch
        do {
            try await body(scratchSettings)
        } catch {
            try? await admin.run(PostgresQuery(unsafeSQL: "DROP DATABASE \(scratch) WITH (FORCE)"), logger: logger)
            try? await admin.close()
            throw error
        }
        try await admin.run(PostgresQuery(unsafeSQL: "DROP DATABASE \(scratch) WITH (FORCE)"), logger: logger)
        try await admin.close()
    }

    @Test func schemaIsMigratedAndNewerSchemaRefused() async throws {
        try await withScratchDatabase { settings in
            let current = try await PostgresStorage(settings: settings)
            #expect(try await current.schemaVersion() == Self.latest)
            let study = try await current.createStudy(name: "kept", directions: [.minimize], attributes: [:])
            await current.close()

            let migrated = try await PostgresStorage(settings: settings, migrations: PostgresStorage.migrations + [Self.version2])
            #expect(try await migrated.schemaVersion() == Self.latest + 1)
            #expect(try await migrated.study(named: "kept").id == study.id)
            await migrated.close()
            // Applied once only (a second INSERT would violate the primary key).
            let reopened = try await PostgresStorage(settings: settings, migrations: PostgresStorage.migrations + [Self.version2])
            await reopened.close()

            await #expect(throws: StudyStorageError.schemaTooNew(found: Self.latest + 1, supported: Self.latest)) {
                _ = try await PostgresStorage(settings: settings)
            }
        }
    }

    /// A retried enqueue or start whose first commit went through but whose reply was lost
    /// (simulated: the attempt that committed throws a transient error afterwards) finds its own
    /// row instead of inserting or starting a second trial.
    @Test func aRetriedWriteWhoseReplyWasLostDoesNotWriteTwice() async throws {
        let storage = try await TestEngines.postgres()
        let dropped = DroppedReplies()
        storage.afterAttempt = { operation, _ in try dropped.drop(operation) }
        // The retried creation returns the study its first attempt made, not "already exists".
        let name = TestEngines.uniqueStudyName("lost-reply")
        dropped.arm("createStudy")
        let study = try await storage.createStudy(name: name, directions: [.minimize], attributes: ["budget": "3"])
        #expect(try await storage.study(named: name) == study)
        // Another caller creating the same name still hears that it exists.
        await #expect(throws: StudyStorageError.studyAlreadyExists(name: name)) {
            try await storage.createStudy(name: name, directions: [.minimize], attributes: [:])
        }
        dropped.arm("enqueueTrial")
        let enqueued = try await storage.enqueueTrial(studyID: study.id, parameters: ["x": .int(1)])
        dropped.arm("startTrial")
        let started = try await storage.startTrial(studyID: study.id)
        dropped.arm("startTrial")
        let fresh = try await storage.startTrial(studyID: study.id)
        storage.afterAttempt = nil
        #expect(dropped.count == 4)
        // One row each: the enqueued trial is the one started, and a start with nothing
        // waiting made exactly one new trial.
        let trials = try await storage.trials(studyID: study.id, states: nil)
        #expect(trials.map(\.number) == [0, 1])
        #expect(started.id == enqueued.id && started.state == .running && started.parameters == ["x": .int(1)])
        #expect(fresh.number == 1 && fresh.state == .running)
        await storage.close()
    }

    @Test func concurrentFirstOpeningsMigrateOnce() async throws {
        try await withScratchDatabase { settings in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let storage = try await PostgresStorage(settings: settings)
                        let version = try await storage.schemaVersion()
                        await storage.close()
                        return version
                    }
                }
                for try await version in group { #expect(version == Self.latest) }
            }
        }
    }
}

/// Fails the next successful attempt of an armed operation after it committed, as a lost
/// commit reply. Armed per call rather than "attempt 0": on a loaded CI machine an attempt can
/// fail for real (its deadline, a serialization failure) before it commits, and the reply lost
/// must then be that of the attempt that did commit.
final class DroppedReplies: @unchecked Sendable {
    private let lock = NSLock()
    private var armed: String?
    private(set) var count = 0

    func arm(_ operation: String) { lock.withLock { armed = operation } }

    func drop(_ operation: String) throws {
        try lock.withLock {
            guard armed == operation else { return }
            armed = nil
            count += 1
            throw DeadlineExceeded()
        }
    }
}
