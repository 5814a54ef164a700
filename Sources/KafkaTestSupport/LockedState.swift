import Synchronization

/// Transitional name for `Mutex` (the project's one lock type; why: the note in `KafkaLog/Support.swift`),
/// kept only while the fault-campaign files under `Faults/` still say `LockedState`; rename
/// those uses to `Mutex` and delete this alias.
public typealias LockedState<State> = Mutex<State>
