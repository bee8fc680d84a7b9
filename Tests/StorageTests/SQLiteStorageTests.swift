import Foundation
import Search
import Testing
@testable import Storage

@Suite("SQLite storage")
struct SQLiteStorageTests {
    /// A file database (WAL, the multi-process configuration) in a fresh directory.
    private func storage() async throws -> any ClosableStudyStorage {
        try await makeStudyStorage(url: TestEngines.sqliteURL())
    }

    @Test func numbering() async throws { try await StorageSemantics.numbering(storage()) }
    @Test func waitingTrialsFirst() async throws { try await StorageSemantics.waitingTrialsFirst(storage()) }
    @Test func finishOnce() async throws { try await StorageSemantics.finishOnce(storage()) }
    @Test func heartbeats() async throws { try await StorageSemantics.heartbeats(storage()) }
    @Test func staleTrialsFailedAndRequeued() async throws { try await StorageSemantics.staleTrialsFailedAndRequeued(storage()) }
    @Test func retryLimit() async throws { try await StorageSemantics.retryLimit(storage()) }
    @Test func deletingStudies() async throws { try await StorageSemantics.deletingStudies(storage()) }
    @Test func attributes() async throws { try await StorageSemantics.attributes(storage()) }

    @Test func inMemoryDatabaseFromURL() async throws {
        let storage = try await makeStudyStorage(url: "memory:")
        try await StorageSemantics.waitingTrialsFirst(storage)
        try await StorageSemantics.finishOnce(storage)
    }

    @Test func studiesPersistAcrossOpenings() async throws {
        let url = try TestEngines.sqliteURL()
        let first = try await makeStudyStorage(url: url)
        let study = try await first.createStudy(name: "persisted", directions: [.maximize], attributes: ["budget": "3"])
        let trial = try await first.startTrial(studyID: study.id)
        try await first.setParameters(trialID: trial.id, ["kernel": .int(5)])
        try await first.finishTrial(trialID: trial.id, state: .complete, values: [0.75], constraints: nil)
        await first.close()

        let second = try await makeStudyStorage(url: url)
        let reopened = try await second.study(named: "persisted")
        #expect(reopened.attributes == ["budget": "3"])
        let trials = try await second.trials(studyID: reopened.id, states: nil)
        #expect(trials.map(\.parameters) == [["kernel": .int(5)]])
        #expect(trials.map(\.values) == [[0.75]])
        #expect(try await second.startTrial(studyID: reopened.id).number == 1)
    }

    @Test func relativePathIsResolvedAgainstTheWorkingDirectory() throws {
        #expect(try StorageURL("sqlite://studies/a.db") == .sqlite(path: "studies/a.db"))
        #expect(try StorageURL("sqlite:///var/lib/edgenas/a.db") == .sqlite(path: "/var/lib/edgenas/a.db"))
    }

    // MARK: schema versions

    /// A stand-in for a future schema change, to exercise the migration mechanism.
    private static let version2 = SchemaMigration(version: 2, statements: [
        "CREATE TABLE edgenas_test_future (id INTEGER PRIMARY KEY)",
        "INSERT INTO edgenas_test_future (id) VALUES (42)",
    ])

    @Test func newDatabaseGetsTheSupportedSchemaVersion() async throws {
        let path = String(try TestEngines.sqliteURL().dropFirst("sqlite://".count))
        let storage = try SQLiteStorage(path: path)
        #expect(try await storage.schemaVersion() == SQLiteStorage.supportedSchemaVersion)
        #expect(SQLiteStorage.supportedSchemaVersion == 1)
    }

    @Test func olderSchemaIsMigratedKeepingItsStudies() async throws {
        let path = String(try TestEngines.sqliteURL().dropFirst("sqlite://".count))
        let old = try SQLiteStorage(path: path)
        let study = try await old.createStudy(name: "kept", directions: [.minimize], attributes: [:])
        _ = try await old.enqueueTrial(studyID: study.id, parameters: ["x": .int(1)])
        await old.close()

        let migrated = try SQLiteStorage(path: path, busyTimeout: 5, migrations: SQLiteStorage.migrations + [Self.version2])
        #expect(try await migrated.schemaVersion() == 2)
        #expect(try await migrated.trials(studyID: study.id, states: [.waiting]).count == 1)
        // Opening again applies nothing twice (the INSERT would violate the primary key).
        await migrated.close()
        let reopened = try SQLiteStorage(path: path, busyTimeout: 5, migrations: SQLiteStorage.migrations + [Self.version2])
        #expect(try await reopened.schemaVersion() == 2)
    }

    @Test func newerSchemaIsRefused() async throws {
        let url = try TestEngines.sqliteURL()
        let path = String(url.dropFirst("sqlite://".count))
        let future = try SQLiteStorage(path: path, busyTimeout: 5, migrations: SQLiteStorage.migrations + [Self.version2])
        await future.close()
        await #expect(throws: StudyStorageError.schemaTooNew(found: 2, supported: 1)) {
            _ = try await makeStudyStorage(url: url)
        }
    }

    @Test func unopenableFileIsReported() async throws {
        let error = await #expect(throws: StorageError.self) {
            _ = try await makeStudyStorage(url: "sqlite:///nonexistent-directory-\(UUID().uuidString)/study.db")
        }
        guard case .cannotOpenDatabase(let path, _) = error else {
            Issue.record("expected cannotOpenDatabase, got \(String(describing: error))")
            return
        }
        #expect(path.hasPrefix("/nonexistent-directory-"))
    }
}
