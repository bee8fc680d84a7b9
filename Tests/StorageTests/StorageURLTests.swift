import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    /// What a restarting server answers, as CI saw it, is waited for; anything else fails at once.
    @Test func aServerStartingUpCountsAsRestarting() {
        #expect(PostgresStorage.isRestarting("the database system is starting up (SQLSTATE 57P03)"))
        #expect(PostgresStorage.isRestarting("Connection refused (errno: 111)"))
        #expect(!PostgresStorage.isRestarting("password authentication failed for user \"u\" (SQLSTATE 28P01)"))
        #expect(!PostgresStorage.isRestarting("no answer within 2.0 s"))
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
        // Bounded, not hanging. Not a speed check: the clock starts when the suite schedules the
        // test, and on 2 cores the suite's training tests have held it back 70 s.
        #expect(Date().timeIntervalSince(start) < 600)
    }

    @Test func silentServerFailsWithinTheConnectTimeout() async throws {
        // A loopback socket that listens but never answers: the TCP connection is made, the
        // PostgreSQL handshake never comes, so only the connect timeout can end the wait.
        let server = try SilentLoopbackServer()
        defer { server.close() }
        let start = Date()
        let error = await #expect(throws: StorageError.self) {
            _ = try await makeStudyStorage(url: "postgresql://u:p@127.0.0.1:\(server.port)/db?connect_timeout=1")
        }
        guard case .unreachable(let host, let port, _) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(host == "127.0.0.1" && port == server.port)
        // Bounded, not hanging. Not a speed check: the clock starts when the suite schedules the
        // test, and on 2 cores the suite's training tests have held it back 70 s.
        #expect(Date().timeIntervalSince(start) < 600)
    }

    @Test func missingStudyIsNamed() async throws {
        let storage = try await makeStudyStorage(url: "memory:")
        await #expect(throws: StudyStorageError.studyNotFound(name: "resnet-search")) {
            _ = try await storage.study(named: "resnet-search")
        }
        #expect(String(describing: StudyStorageError.studyNotFound(name: "resnet-search")).contains("'resnet-search'"))
    }
}

/// A TCP socket listening on 127.0.0.1 (a free port) that never accepts or answers.
private final class SilentLoopbackServer {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard descriptor >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
