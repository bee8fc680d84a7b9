/// The check list `edgenas doctor` prints: one line per item with its state, and for each item
/// that is not fine, how to fix it.
struct DoctorReport {
    enum State: String {
        /// Present and working.
        case ok = "ok"
        /// Missing or broken, and the default pipeline (`edgenas demo`, `edgenas search` with
        /// the default `int8` latency backend) needs it: doctor exits non-zero.
        case missing = "MISSING"
        /// Missing or not ideal, but only some commands or the tests need it.
        case warning = "warning"
        /// Information only.
        case info = "-"
    }

    struct Item {
        var state: State
        var name: String
        var detail: String
        /// What to do about it (printed for `.missing` and `.warning`).
        var fix: String? = nil
    }

    struct Section {
        var title: String
        var items: [Item] = []
    }

    private(set) var sections: [Section] = []

    mutating func section(_ title: String) { sections.append(Section(title: title)) }

    mutating func add(_ state: State, _ name: String, _ detail: String, fix: String? = nil) {
        if sections.isEmpty { section("") }
        sections[sections.count - 1].items.append(Item(state: state, name: name, detail: detail, fix: fix))
    }

    var items: [Item] { sections.flatMap(\.items) }
    /// True when something the default pipeline needs is missing.
    var hasMissing: Bool { items.contains { $0.state == .missing } }

    func rendered() -> String {
        var lines: [String] = []
        for section in sections {
            lines.append(section.title)
            for item in section.items {
                let state = item.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                let name = item.name.padding(toLength: max(20, item.name.count + 1), withPad: " ", startingAt: 0)
                lines.append("  \(state) \(name)\(item.detail)")
                if let fix = item.fix, item.state == .missing || item.state == .warning {
                    lines.append("           \(String(repeating: " ", count: 20))fix: \(fix)")
                }
            }
            lines.append("")
        }
        let missing = items.filter { $0.state == .missing }, warnings = items.filter { $0.state == .warning }
        if missing.isEmpty {
            lines.append(warnings.isEmpty
                ? "OK: ready to search."
                : "OK: ready to search (\(warnings.count) warning\(warnings.count == 1 ? "" : "s") above, for the commands named there).")
        } else {
            lines.append("NOT READY: \(missing.map(\.name).joined(separator: ", ")) not usable; see the fixes above.")
        }
        return lines.joined(separator: "\n")
    }
}
