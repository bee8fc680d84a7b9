import Foundation

/// Reads a JSON fixture committed under Tests/EstimationTests/Fixtures (made by the scripts in
/// Benchmarks/estimation).
func loadFixture(_ name: String) throws -> [String: Any] {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Fixtures/\(name).json"])
    }
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    guard let dictionary = object as? [String: Any] else { throw CocoaError(.propertyListReadCorrupt) }
    return dictionary
}

func doubles(_ value: Any?) -> [Double] { (value as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? [] }
func matrix(_ value: Any?) -> [[Double]] { (value as? [Any])?.map { doubles($0) } ?? [] }
func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
