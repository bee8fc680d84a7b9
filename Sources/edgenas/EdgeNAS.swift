import ArgumentParser
import Torch

@main
struct EdgeNAS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgenas",
        abstract: "Hardware-aware neural architecture search for detectors on edge devices.",
        version: "0.1.0",
        subcommands: [DoctorCommand.self, InitCommand.self, SearchCommand.self, DemoCommand.self, ReportCommand.self, DashboardCommand.self,
                      ArchitectureCommand.self, DataCommand.self, TrainCommand.self, EvalCommand.self, QuantizeCommand.self, ExportCommand.self,
                      ProfileCommand.self, SuggestSpaceCommand.self, SelectEstimatorCommand.self, PlanCommand.self,
                      StudyCommand.self, WorkerCommand.self, AgentCommand.self, LatencyCommand.self]
    )

    static func main() async {
        Torch.relaunchWithPassiveOpenMPIfNeeded()
        Torch.keepFreedMemoryForReuse()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
