import Foundation
import Search

/// The text encodings both engines use for structured columns (parameters, values), so a
/// study reads the same whichever engine stored it. JSON keeps the rows readable with the
/// engine's own shell; non-finite numbers (a diverged objective) are spelled out, since JSON
/// has no literal for them.
enum StorageCodec {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }()

    static func encode<Value: Encodable>(_ value: Value) -> String {
        // Encoding dictionaries of strings/enums and arrays of doubles (non-finite ones spelled
        // out) cannot fail, so a failure here is a programming error, not bad input.
        guard let data = try? encoder.encode(value), let text = String(data: data, encoding: .utf8) else {
            preconditionFailure("JSON encoding of \(Value.self) failed")
        }
        return text
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from text: String, table: String, id: Int) throws -> Value {
        do {
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw StorageError.corruptRecord(table: table, id: id, reason: "expected JSON \(Value.self), found '\(text.prefix(80))'")
        }
    }

    static func state(_ text: String, trialID: Int) throws -> TrialState {
        guard let state = TrialState(rawValue: text) else {
            throw StorageError.corruptRecord(table: "edgenas_trials", id: trialID, reason: "unknown trial state '\(text)'")
        }
        return state
    }

    static func date(_ seconds: Double?) -> Date? { seconds.map { Date(timeIntervalSince1970: $0) } }
}

/// One step of the schema's history. The schema version of a database is the version of the
/// last migration applied to it; a build refuses databases newer than its last migration.
struct SchemaMigration: Sendable {
    var version: Int
    var statements: [String]
}
