import ArgumentParser

@main
struct EdgeNAS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgenas",
        abstract: "Hardware-aware neural architecture search for detectors on edge devices.",
        version: "0.1.0",
        subcommands: []
    )
}
