// The Storage module: study storages backed by a database engine, so that any number of
// worker processes (on one machine with SQLite, on many with PostgreSQL) share one study.
// See docs/distributed.md.
import Search

/// A study storage that holds resources (a connection pool, a database handle) and should be
/// closed when the process is done with it.
public protocol ClosableStudyStorage: StudyStorage {
    /// Releases the storage's connections. Calls made after `close()` fail.
    func close() async
}
