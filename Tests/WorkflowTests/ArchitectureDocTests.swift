import Foundation
import Testing

/// docs/architecture.md must tell the story Package.swift and the sources tell: every type it
/// names in backquotes exists, and every library target has its row in the targets table.
struct ArchitectureDocTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Every Swift, C and C++ file of the package's sources and tests, concatenated.
    static func sources() throws -> String {
        var text = ""
        for folder in ["Sources", "Tests"] {
            let enumerator = FileManager.default.enumerator(at: root.appendingPathComponent(folder), includingPropertiesForKeys: nil)
            while let file = enumerator?.nextObject() as? URL {
                if ["swift", "h", "cpp"].contains(file.pathExtension) { text += try String(contentsOf: file, encoding: .utf8) }
            }
        }
        return text
    }

    /// Names from Swift's standard library that the page may use.
    static let standard: Set = ["Codable", "Sendable", "Hashable", "Package"]

    static func matches(_ pattern: String, in text: String) throws -> [String] {
        let expression = try NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range(at: 1), in: text)!]) }
    }

    @Test func everyTypeThePageNamesExists() throws {
        let page = try Self.read("docs/architecture.md"), sources = try Self.sources(), package = try Self.read("Package.swift")
        let named = Set(try Self.matches(#"`([A-Z][A-Za-z0-9]+)(?:\.[A-Za-z]+)?(?:\(\))?`"#, in: page))
        let declared = Set(try Self.matches(#"(?:struct|class|enum|protocol|typealias|actor)\s+([A-Z][A-Za-z0-9]+)"#, in: sources))
        let targets = Set(try Self.matches(#"name:\s*"([A-Za-z][A-Za-z0-9-]*)""#, in: package))
        let missing = named.subtracting(declared).subtracting(targets).subtracting(Self.standard)
        #expect(missing.isEmpty, "docs/architecture.md names \(missing.sorted()), which no source declares")
    }

    @Test func everyLibraryTargetHasARow() throws {
        let whole = try Self.read("docs/architecture.md"), package = try Self.read("Package.swift")
        // The targets table: from its heading to the next heading.
        let start = try #require(whole.range(of: "## Targets"))
        let page = String(whole[start.upperBound...].prefix { $0 != "#" })
        let libraries = Set(try Self.matches(#"\.target\(\s*name:\s*"([A-Za-z]+)""#, in: package))
        let rows = Set(try Self.matches(#"(?m)^\| `([A-Za-z]+)`"#, in: page))
            .union(try Self.matches(#"(?m)^\| `[A-Za-z]+` / `([A-Za-z]+)`"#, in: page))
        let mentioned = Set(try Self.matches(#"`([A-Za-z]+)`"#, in: page))
        let missing = libraries.subtracting(rows).subtracting(mentioned)
        #expect(missing.isEmpty, "Package.swift's targets \(missing.sorted()) have no row in docs/architecture.md")
        let stale = rows.subtracting(libraries).subtracting(["edgenas"])
        #expect(stale.isEmpty, "docs/architecture.md has rows for \(stale.sorted()), which Package.swift does not declare")
    }

    /// Library targets and their local dependencies, read from Package.swift (products of other
    /// packages left out).
    static func targetGraph() throws -> [(name: String, dependencies: [String])] {
        let package = try read("Package.swift")
        var graph: [(name: String, dependencies: [String])] = []
        let declaration = try NSRegularExpression(pattern: #"\.target\(\s*name:\s*"([A-Za-z]+)""#)
        for match in declaration.matches(in: package, range: NSRange(package.startIndex..., in: package)) {
            let name = String(package[Range(match.range(at: 1), in: package)!])
            var rest = package[Range(match.range, in: package)!.upperBound...]
            guard let open = rest.range(of: "dependencies: ["), rest[..<open.lowerBound].firstIndex(of: ")") == nil else {
                graph.append((name, []))
                continue
            }
            rest = rest[open.upperBound...]
            var depth = 1, end = rest.startIndex
            while depth > 0 {
                if rest[end] == "[" { depth += 1 } else if rest[end] == "]" { depth -= 1 }
                end = rest.index(after: end)
            }
            let list = String(rest[..<rest.index(before: end)])
                .replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
            graph.append((name, try matches(#""([A-Za-z]+)""#, in: list)))
        }
        return graph
    }

    @Test func theTargetGraphIsPackageSwifts() throws {
        let page = try Self.read("docs/architecture.md")
        let listed = try Self.matches(#"(?m)^- `([A-Za-z]+)` → .*$"#, in: page)
        let graph = try Self.targetGraph()
        #expect(listed == graph.map(\.name), "docs/architecture.md's target graph lists \(listed), Package.swift \(graph.map(\.name))")
        for (name, dependencies) in graph {
            let line = "- `\(name)` → " + (dependencies.isEmpty ? "nothing" : dependencies.map { "`\($0)`" }.joined(separator: ", "))
            #expect(page.contains(line + "\n"), "docs/architecture.md should say: \(line)")
        }
    }

    /// Every target imports only what Package.swift says it depends on (SwiftPM lets a target
    /// import a dependency of a dependency; the arrows of the page would then be false).
    @Test func everyTargetImportsOnlyItsDeclaredDependencies() throws {
        let graph = try Self.targetGraph()
        let local = Set(graph.map(\.name))
        for (name, dependencies) in graph {
            let folder = Self.root.appendingPathComponent("Sources/\(name)")
            var imports: Set<String> = []
            let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
            while let file = enumerator?.nextObject() as? URL {
                guard file.pathExtension == "swift" else { continue }
                imports.formUnion(try Self.matches(#"(?m)^(?:@testable |@_exported )?import ([A-Za-z]+)"#,
                                                   in: String(contentsOf: file, encoding: .utf8)))
            }
            let undeclared = imports.intersection(local).subtracting(dependencies)
            #expect(undeclared.isEmpty, "\(name) imports \(undeclared.sorted()) without declaring them in Package.swift")
            let unused = Set(dependencies).subtracting(imports).filter { !$0.hasPrefix("C") }
            #expect(unused.isEmpty, "\(name) declares \(unused.sorted()) in Package.swift but imports none of them")
        }
    }
}
