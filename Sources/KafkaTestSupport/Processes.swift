import ZooKeeper
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the test-support machinery itself (spawning, ports, servers).
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct ProcessResult: Sendable {
    /// The exit status; 128 + signal number when the process was killed by a signal.
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String

    public init(exitCode: Int32, stdout: String, stderr: String) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Low-level spawning shared by `ProcessRunner` and `BackgroundProcess`.
///
/// Children run in their own process group (signals go to the whole group, so a shell script and the
/// program it starts are stopped together), with default signal dispositions and an empty signal mask.
enum Spawner {
    /// `environment` is merged over the current environment (its values win).
    static func spawn(_ executable: String, _ arguments: [String], environment: [String: String]?,
                      currentDirectory: String?, stdinPath: String?, stdoutPath: String,
                      stderrPath: String?) throws -> pid_t {
        var env = ProcessInfo.processInfo.environment
        if let environment { env.merge(environment) { _, new in new } }

        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) }
        argv.append(nil)
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") }
        envp.append(nil)
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let stderrPath, stderrPath != stdoutPath {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if let currentDirectory {
            guard let addchdir = addChdirAction else {
                throw TestSupportError("posix_spawn_file_actions_addchdir_np is unavailable: cannot set the directory")
            }
            let rc = addchdir(&actions, currentDirectory)
            if rc != 0 { throw TestSupportError("cannot use directory \(currentDirectory): \(String(cString: strerror(rc)))") }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var pid: pid_t = 0
        let rc: Int32
        if executable.contains("/") {
            rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        } else {
            rc = posix_spawnp(&pid, executable, &actions, &attr, argv, envp)
        }
        if rc != 0 {
            throw TestSupportError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// glibc's posix_spawn_file_actions_addchdir_np (2.29+), which Swift's Glibc module does not export.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    private static let addChdirAction: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    /// Non-blocking reap: the exit code if the process has ended.
    static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return decode(status) }
        if r < 0 && errno == ECHILD { return -1 }   // not our child (anymore): treat as gone
        return nil
    }

    static func decode(_ status: Int32) -> Int32 {
        let sig = status & 0x7f
        if sig == 0 { return (status >> 8) & 0xff }   // exited
        return 128 + sig                              // killed by a signal
    }

    /// Polls for the exit for up to `timeout` seconds.
    static func wait(_ pid: pid_t, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let code = reap(pid) { return code }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    static func readFile(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    static func makeTempDirectory(prefix: String) throws -> String {
        var base = NSTemporaryDirectory()
        if !base.hasSuffix("/") { base += "/" }
        var template = Array("\(base)\(prefix)XXXXXX".utf8CString)
        let ok = template.withUnsafeMutableBufferPointer { buf in mkdtemp(buf.baseAddress!) != nil }
        guard ok else { throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))") }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// `kill(2)`, under a name that the `kill()` methods below do not shadow.
@discardableResult
func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.kill(pid, signal)
    #else
    return Darwin.kill(pid, signal)
    #endif
}

public enum ProcessRunner {
    /// Runs a command to completion and captures its output. `environment` is merged over the current
    /// environment. On timeout the process group is killed (SIGKILL) and an error is thrown.
    /// Blocks the calling thread: from async tests, keep commands short.
    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                           environment: [String: String]? = nil, currentDirectory: String? = nil,
                           timeout: Double = 60) throws -> ProcessResult {
        let dir = try Spawner.makeTempDirectory(prefix: "kafka-swift-run-")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = dir + "/stdout", errPath = dir + "/stderr"
        var inPath: String?
        if let stdin {
            inPath = dir + "/stdin"
            try Data(stdin.utf8).write(to: URL(fileURLWithPath: inPath!))
        }
        let pid = try Spawner.spawn(executable, arguments, environment: environment,
                                    currentDirectory: currentDirectory, stdinPath: inPath,
                                    stdoutPath: outPath, stderrPath: errPath)
        guard let code = Spawner.wait(pid, timeout: timeout) else {
            if sendSignal(-pid, SIGKILL) != 0 { sendSignal(pid, SIGKILL) }
            _ = Spawner.wait(pid, timeout: 10)
            let out = Spawner.readFile(outPath), err = Spawner.readFile(errPath)
            throw TestSupportError("\(executable) \(arguments.joined(separator: " ")) timed out after \(timeout)s\nstdout:\n\(out)\nstderr:\n\(err)")
        }
        return ProcessResult(exitCode: code, stdout: Spawner.readFile(outPath), stderr: Spawner.readFile(errPath))
    }
}

/// A long-running child (broker, console consumer) whose stdout and stderr go to `outputFile`.
/// It runs in its own process group; signals are sent to the group. If still running when the
/// object is deinitialised, it is killed (SIGKILL), so a failing test leaves no stray processes.
public final class BackgroundProcess: Sendable {
    public let pid: Int32
    public let outputFile: String
    private let exitCode = Mutex<Int32?>(nil)

    private init(pid: Int32, outputFile: String) {
        self.pid = pid
        self.outputFile = outputFile
    }

    /// `environment` is merged over the current environment.
    public static func launch(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                              outputFile: String) throws -> BackgroundProcess {
        return try launch(executable, arguments, environment: environment, currentDirectory: nil, outputFile: outputFile)
    }

    public static func launch(_ executable: String, _ arguments: [String], environment: [String: String]?,
                              currentDirectory: String?, outputFile: String) throws -> BackgroundProcess {
        ChildRegistry.installExitHandler()
        let pid = try Spawner.spawn(executable, arguments, environment: environment,
                                    currentDirectory: currentDirectory, stdinPath: nil,
                                    stdoutPath: outputFile, stderrPath: nil)
        ChildRegistry.add(pid)
        return BackgroundProcess(pid: pid, outputFile: outputFile)
    }

    deinit {
        if exitCode.withLock({ $0 }) == nil, Spawner.reap(pid) == nil {
            if sendSignal(-pid, SIGKILL) != 0 { sendSignal(pid, SIGKILL) }
            _ = Spawner.wait(pid, timeout: 10)
        }
        ChildRegistry.remove(pid)
    }

    /// True until the process has exited (and been reaped).
    public var isRunning: Bool {
        exitStatus == nil
    }

    /// The exit code once the process has ended (128 + signal when killed), else nil. Never blocks.
    public var exitStatus: Int32? {
        let result = exitCode.withLock { code in
            if code == nil { code = Spawner.reap(pid) }
            return code
        }
        if result != nil { ChildRegistry.remove(pid) }
        return result
    }

    /// Sends `signal` to the process group (and the process), unless it has already exited.
    public func signal(_ signal: Int32) {
        exitCode.withLock { code in
            if code == nil { code = Spawner.reap(pid) }
            guard code == nil else { return }
            if sendSignal(-pid, signal) != 0 { sendSignal(pid, signal) }
        }
    }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }
    /// SIGKILL.
    public func kill() { signal(SIGKILL) }
    /// SIGSTOP: freezes the process (and its group) until `resume()`.
    public func suspend() { signal(SIGSTOP) }
    /// SIGCONT.
    public func resume() { signal(SIGCONT) }

    /// Waits (blocking the calling thread) up to `timeout` seconds; the exit code, or nil if still running.
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let code = exitStatus { return code }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace` seconds. Returns the exit code.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32? {
        terminate()
        if let code = waitForExit(timeout: grace) { return code }
        kill()
        return waitForExit(timeout: 10)
    }

    /// Everything written to `outputFile` so far.
    public func output() -> String {
        Spawner.readFile(outputFile)
    }
}

/// Background children still running when the test process exits normally are killed (SIGKILL to
/// their process group), so that no ZooKeeper or broker outlives the test run.
enum ChildRegistry {
    private static let pids = Mutex<Set<pid_t>>([])
    private static let installed = Mutex(false)

    static func add(_ pid: pid_t) { _ = pids.withLock { $0.insert(pid) } }
    static func remove(_ pid: pid_t) { _ = pids.withLock { $0.remove(pid) } }

    static func installExitHandler() {
        let first = installed.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { atexit { ChildRegistry.killAll() } }
    }

    static func killAll() {
        let all = pids.withLock { $0 }
        for pid in all where Spawner.reap(pid) == nil {
            if sendSignal(-pid, SIGKILL) != 0 { sendSignal(pid, SIGKILL) }
        }
    }
}
