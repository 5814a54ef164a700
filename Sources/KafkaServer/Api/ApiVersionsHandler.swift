import KafkaProtocol
import NIOCore

/// ApiVersions (key 18, v0-v4): beyond 0.8.2, which closes the connection on it. Lets clients that
/// probe first (librdkafka's default `api.version.request=true`, kafka-python without
/// `api_version`) connect and then speak the 0.8 versions listed.
///
/// `advertised` is built by `KafkaApis` from its own routes (this handler included), so the list
/// is exactly what the router serves. A version above v4 is answered as real brokers do: a v0
/// response with UNSUPPORTED_VERSION (35) naming the ApiVersions versions served, after which the
/// client retries with one of them. A v3+ request whose body does not parse, or whose client
/// software name or version is not Kafka's `[a-zA-Z0-9](?:[a-zA-Z0-9-.]*[a-zA-Z0-9])?`, gets
/// INVALID_REQUEST (42) in its own version, as Kafka answers an invalid one.
struct ApiVersionsHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = ApiVersionsRequest.versions
    static let invalidRequestError: Int16 = 42
    let advertised: [ApiVersionsResponse.ApiVersion]

    /// The request, or nil when a flexible body does not parse.
    struct Parsed: KafkaRequest {
        static var apiKey: APIKey { .apiVersions }
        var apiVersion: Int16
        var request: ApiVersionsRequest?
        func encode(into buf: inout ByteBuffer) { request?.encode(into: &buf) }
    }

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> Parsed {
        Parsed(apiVersion: version, request: try? ApiVersionsRequest.decode(from: &body, version: version))
    }

    func handle(_ parsed: Parsed, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let version = parsed.apiVersion
        if version >= ApiVersionsRequest.firstFlexibleVersion {
            guard let r = parsed.request, Self.isValidSoftwareField(r.clientSoftwareName),
                  Self.isValidSoftwareField(r.clientSoftwareVersion) else {
                return ctx.answer(ApiVersionsResponse(version: version, error: Self.invalidRequestError, apiKeys: []))
            }
        }
        return ctx.answer(ApiVersionsResponse(version: version, apiKeys: advertised))
    }

    func answerUnsupportedVersion(_ ctx: RequestContext) -> EventLoopFuture<ResponseAction>? {
        // Negative versions are garbage, not a newer client: closed like any bad header.
        guard ctx.apiVersion > Self.versions.upperBound else { return nil }
        return ctx.answer(ApiVersionsResponse.unsupportedVersion(served: Self.versions))
    }

    /// Kafka's check on `client_software_name` / `client_software_version`.
    static func isValidSoftwareField(_ s: String) -> Bool {
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
        }
        guard let first = u.first, let last = u.last, alnum(first), alnum(last) else { return false }
        return u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }
}
