import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A minimal element tree built with Foundation's XMLParser; enough for VOC annotation files.
struct XMLNode: Sendable {
    var name: String
    var text: String = ""
    var children: [XMLNode] = []

    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    func children(named name: String) -> [XMLNode] { children.filter { $0.name == name } }
    var trimmedText: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Parses a document; returns the root element or the parser's error message with its line.
    static func parse(_ data: Data) -> Result<XMLNode, XMLParseFailure> {
        let builder = TreeBuilder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let line = parser.lineNumber
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            return .failure(XMLParseFailure(message: "XML parse error at line \(line): \(reason)"))
        }
        return .success(root)
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLNode] = []
    var root: XMLNode?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        stack.append(XMLNode(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let node = stack.popLast() else { return }
        if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
    }
}

struct XMLParseFailure: Error {
    var message: String
}
