import Foundation
import Search
import Testing
@testable import Storage

@Suite("Storage URLs and connection errors")
struct StorageURLTests {
    @Test func postgresURLs() throws {
        let full = try StorageURL("postgresql://edgenas:s%40cret@db.example.org:6543/nas?sslmode=require&connect_timeout=2.5")
        guard case .postgres(let settings) = full else {
            Issue.record("expected a PostgreSQL URL, got \(full)")
            return
        }
        #expect(settings.host == "db.example.org")
        #expect(settings.port == 6543)
        #expect(settings.username == "edgenas")
        #expect(settings.password == "s@cret")
        #expect(settings.database == "nas")
        #expect(settings.tlsMode == .require)
        #expect(settings.connectTimeout == 2.5)

        guard case .postgres(let short) = try StorageURL("postgres://worker@10.0.0.5/studies") else {
            Issue.record("postgres:// is accepted too")
            return
        }
        #expect(short.port == 5432)
        #expect(short.password == nil)
        #expect(short.tlsMode == .prefer)
        #expect(try StorageURL("memory:") == .memory)
    }

    @Test(arguments: [
        ("mysql://u:p@host/db", "unknown scheme 'mysql'"),
        ("study.db", "no scheme"),
        ("sqlite://", "names no file"),
        ("postgresql://host:5432/db", "no user name"),
        ("postgresql://u:p@host:5432", "no database name"),
        ("postgresql://u:p@host/db?sslmode=sometimes", "sslmode must be"),
        ("postgresql://u:p@host/db?connect_timeout=-1", "connect_timeout must be"),
        ("postgresql://u:p@host/db?pool=3", "unknown option 'pool'"),
    ])
    func invalidURLsSayWhatWasExpected(url: String, reason: String) throws {
        #expect {
            try StorageURL(url)
        } throws: { error in
            guard case .invalidURL(_, let found) = error as? StorageError else { return false }
            let message = String(describing: error)
            return found.contains(reason) && message.contains("expected sqlite:///") && message.contains("postgresql://")
        }
    }

    @Test func passwordsStayOutOfErrorMessages() {
        #expect {
            try StorageURL("postgresql://u:hunter2@host/db?sslmode=nope")
        } throws: { error in
            !String(describing: error).contains("hunter2") && String(describing: error).contains("u:***@host")
        }
    }

    @Test func refusedConnectionNamesHostPortAndReason() async throws {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let start = Date()
        let error = await #expect(throws: StorageError.self) {
            _ = try await makeStudyStorage(url: "postgresql://u:p@127.0.0.1:1/db?connect_timeout=2")
        }
        guard case .unreachable(let host, let port, let reason) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(host == "127.0.0.1" && port == 1)
        #expect(reason.lowercased().contains("refused"))
        #expect(String(describing: error!).hasPrefix("cannot connect to PostgreSQL at 127.0.0.1:1:"))
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func silentHostFailsWithinTheConnectTimeout() async throws {
        // 10.255.255.1 is unroutable: packets vanish (or the network says unreachable at once).
        let start = Date()
        let error = await #expect(throws: StorageError.self) {
            _ = try await makeStudyStorage(url: "postgresql://u:p@10.255.255.1:5432/db?connect_timeout=1")
        }
        guard case .unreachable(let host, let port, _) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(host == "10.255.255.1" && port == 5432)
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func missingStudyIsNamed() async throws {
        let storage = try await makeStudyStorage(url: "memory:")
        await #expect(throws: StudyStorageError.studyNotFound(name: "resnet-search")) {
            _ = try await storage.study(named: "resnet-search")
        }
        #expect(String(describing: StudyStorageError.studyNotFound(name: "resnet-search")).contains("'resnet-search'"))
    }
}
