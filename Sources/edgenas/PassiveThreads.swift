import Foundation

/// Makes sure libtorch's OpenMP workers wait passively.
///
/// libgomp reads OMP_WAIT_POLICY once, when the library loads, before any Swift code runs;
/// its default lets idle workers spin, which on 2 shared cores makes training 40x and INT8
/// inference 80x slower as soon as another process is busy. So when the variable is unset,
/// the process sets it and replaces itself (execv) with the same program and arguments; the
/// new image loads libgomp with the passive policy. A user's explicit setting is respected.
enum PassiveThreads {
    static let variable = "OMP_WAIT_POLICY"

    static func ensure() {
        guard ProcessInfo.processInfo.environment[variable] == nil else { return }
        setenv(variable, "PASSIVE", 1)
        let arguments = CommandLine.arguments
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        // /proc/self/exe is this very binary, wherever it was started from.
        execv("/proc/self/exe", &pointers)
        // execv only returns on failure; carry on with the spinning default rather than stop.
        FileHandle.standardError.write(Data("warning: could not restart with \(variable)=PASSIVE (errno \(errno)); set it in the environment\n".utf8))
    }
}
