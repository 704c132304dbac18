/**
 * TCP sockets as the lower layers (stun/, punch/, rendezvous/, peer/) make them, injected so the
 * in-process network (src/sim/) can run them on simulated TCP (STYLE §8, §9), as `Clock` and the
 * dgram socket factories are. The default is node:net itself.
 */
import net from 'node:net';

/** The two node:net calls natpunch makes: `net.connect(options)` and `net.createServer(options, listener)`. */
export interface TcpNet {
  /** As `net.connect(options)`. */
  connect(options: net.TcpNetConnectOpts): net.Socket;
  /** As `net.createServer(options, listener)`. */
  createServer(options: net.ServerOpts, connectionListener?: (socket: net.Socket) => void): net.Server;
}

export const realTcpNet: TcpNet = {
  connect: (options) => net.connect(options),
  createServer: (options, connectionListener) => net.createServer(options, connectionListener),
};
