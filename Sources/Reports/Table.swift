import Foundation

/// A table of text cells with a header: printed to a terminal, written as CSV, or embedded
/// in an HTML report, so every result a person reads on screen is also in a file.
public struct Table: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String]]

    public init(columns: [String], rows: [[String]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// RFC 4180 CSV: fields with commas, quotes or line breaks are quoted, quotes doubled.
    public var csv: String {
        func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return ([columns] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// Columns padded to their widest cell; columns whose every cell is a number (a trailing
    /// % or x allowed) are right-aligned, header included.
    public var text: String {
        let widths = columns.indices.map { column in
            ([columns] + rows).map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
        }
        func isNumber(_ cell: String) -> Bool {
            Double(cell.trimmingCharacters(in: CharacterSet(charactersIn: "%x "))) != nil
        }
        let rightAligned = columns.indices.map { column in
            !rows.isEmpty && rows.allSatisfy { column < $0.count && isNumber($0[column]) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return rightAligned[column] ? padding + cell : cell + padding
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(columns), rule] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// An HTML `<table>` element.
    public var html: String {
        var html = "<table>\n<thead><tr>" + columns.map { "<th>\(xmlEscaped($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows {
            html += "<tr>" + row.map { "<td>\(xmlEscaped($0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }
}

/// A self-contained HTML page of sections (headings, paragraphs, tables, inline SVG).
public struct HTMLReport: Sendable {
    public enum Element: Sendable {
        case heading(String)
        case paragraph(String)
        case table(Table)
        /// An SVG document, inlined so the page needs no other file.
        case svg(String)
    }

    public var title: String
    public var elements: [Element] = []

    public init(title: String) { self.title = title }

    public mutating func add(_ element: Element) { elements.append(element) }

    public var html: String {
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(xmlEscaped(title))</title>
        <style>
        body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; }
        th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
        th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
        svg { max-width: 100%; height: auto; }
        </style></head><body>
        <h1>\(xmlEscaped(title))</h1>

        """
        for element in elements {
            switch element {
            case .heading(let text): page += "<h2>\(xmlEscaped(text))</h2>\n"
            case .paragraph(let text): page += "<p>\(xmlEscaped(text))</p>\n"
            case .table(let table): page += table.html
            case .svg(let svg): page += "<figure>\n\(svg)</figure>\n"
            }
        }
        return page + "</body></html>\n"
    }
}
