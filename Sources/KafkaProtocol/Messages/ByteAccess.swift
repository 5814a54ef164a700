/// Big-endian load/store helpers over raw buffers, internal to the message code.
@usableFromInline
enum BE {
    @inlinable @inline(__always)
    static func i64(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int64 {
        Int64(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self))
    }
    @inlinable @inline(__always)
    static func i32(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int32 {
        Int32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int32.self))
    }
    @inlinable @inline(__always)
    static func u32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    @inlinable @inline(__always)
    static func put64(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ v: Int64) {
        p.storeBytes(of: v.bigEndian, toByteOffset: at, as: Int64.self)
    }
    @inlinable @inline(__always)
    static func put32(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ v: Int32) {
        p.storeBytes(of: v.bigEndian, toByteOffset: at, as: Int32.self)
    }
    @inlinable @inline(__always)
    static func append64(_ a: inout [UInt8], _ v: Int64) {
        withUnsafeBytes(of: v.bigEndian) { a.append(contentsOf: $0) }
    }
    @inlinable @inline(__always)
    static func append32(_ a: inout [UInt8], _ v: Int32) {
        withUnsafeBytes(of: v.bigEndian) { a.append(contentsOf: $0) }
    }
    @inlinable @inline(__always)
    static func appendU32(_ a: inout [UInt8], _ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { a.append(contentsOf: $0) }
    }
}

/// `withUnsafeBytes` that keeps the body's typed error (the stdlib versions are `rethrows`).
@inline(__always)
func withBytes<R, E: Error>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let r: Result<R, E> = a.withUnsafeBytes { p in
        do throws(E) { return .success(try body(p)) } catch { return .failure(error) }
    }
    return try r.get()
}

@inline(__always)
func withMutableBytes<R, E: Error>(_ a: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let r: Result<R, E> = a.withUnsafeMutableBytes { p in
        do throws(E) { return .success(try body(p)) } catch { return .failure(error) }
    }
    return try r.get()
}
