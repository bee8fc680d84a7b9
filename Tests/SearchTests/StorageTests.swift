import Foundation
import Testing
@testable import Search

@Suite struct InMemoryStorageTests {
    @Test func conformsToTheStorageContract() async throws {
        try await StorageConformance.run { InMemoryStorage() }
    }
}
