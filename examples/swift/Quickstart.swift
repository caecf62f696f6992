// edrlink quickstart (Swift, iOS/macOS): enroll, EICAR test, health.
// Add bindings/swift as a Swift package dependency (after build-xcframework.sh).
// Not compiled on the project's Linux build machines.
import Edrlink
import Foundation

/// The app's own HTTP stack (URLSession) as the SDK's transport.
final class URLSessionTransport: Transport, @unchecked Sendable {
    func send(request: TransportRequest) throws -> TransportResponse {
        var req = URLRequest(url: URL(string: request.url)!)
        req.httpMethod = request.method
        req.httpBody = request.body
        for h in request.headers { req.setValue(h.value, forHTTPHeaderField: h.name) }
        var result: Result<(Data, HTTPURLResponse), Error>!
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: req) { data, resp, err in
            if let err { result = .failure(err) } else { result = .success((data ?? Data(), resp as! HTTPURLResponse)) }
            done.signal()
        }.resume()
        done.wait() // the SDK calls send() on a background thread, never the main thread
        switch result! {
        case .failure(let e): throw TransportError.Failed(reason: e.localizedDescription)
        case .success(let (body, http)):
            let headers = http.allHeaderFields.map { TransportHeader(name: "\($0.key)", value: "\($0.value)") }
            return TransportResponse(status: UInt16(http.statusCode), headers: headers, body: body)
        }
    }
}

func quickstart(token: String) throws {
    let device = DeviceInfo(deviceId: UUID().uuidString, hostname: ProcessInfo.processInfo.hostName, os: "macos",
                            osVersion: ProcessInfo.processInfo.operatingSystemVersionString, product: "Acme AV", productVersion: "1.0.0")
    // Every option of docs/OPTIONS.md, camelCase, schema defaults (e.g. whenFull: "refuse_new").
    let client = try EdrlinkClient(options: ClientOptions(device: device, maxQueueEvents: 50_000), transport: URLSessionTransport())
    defer { client.shutdown() }
    do {
        let health = try client.enroll(token: token)
        print("enrolled as \(health.installationId ?? "?"), flow \(String(describing: health.flow))")
    } catch let e as EdrlinkError {
        // every failure: code, number, httpStatus, retryAfter, detail
        if e.code == "token_expired" { print("token expired: generate a new one in the portal") }
        else { print("enrollment failed [\(e.code)]: \(e.detail)") }
        throw e
    }
    try client.sendTestDetection()
    print(try client.flush(timeoutSecs: 30))
}
