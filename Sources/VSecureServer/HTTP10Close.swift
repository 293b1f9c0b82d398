import NIOCore
import NIOHTTP1

/// An HTTP/1.0 connection ends after each answer unless the client asked to keep it
/// (`Connection: keep-alive`), and some 1.0 clients read an answer until the connection closes.
/// `HTTP1ToHTTPServerCodec` drops the request's version, so the handlers after it (Hummingbird's
/// and the fast read path) would keep such a connection open until the idle time-out. This
/// handler, placed before the codec, tells them in the one way they understand: it gives such a
/// request `Connection: close`.
final class HTTP10ConnectionCloseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(var head) = unwrapInboundIn(data), head.version == .http1_0, !head.isKeepAlive {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.fireChannelRead(wrapInboundOut(.head(head)))
        } else {
            context.fireChannelRead(data)
        }
    }
}
