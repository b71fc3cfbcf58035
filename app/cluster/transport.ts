/* UDP multicast on the cluster network: discovery, offers and keepalives. One socket joined to
 * the group on the configured interface address; TTL 1 keeps cluster traffic on its segment. */
import { createSocket, type Socket } from 'node:dgram';

export interface MulticastOptions {
  group: string;
  port: number;
  /** This unit's address on the cluster network: the interface that joins the group and sends. */
  interfaceAddress: string;
}

export class MulticastTransport {
  private constructor(
    private readonly socket: Socket,
    private readonly options: MulticastOptions,
  ) {}

  static open(options: MulticastOptions, onDatagram: (datagram: Buffer, sourceAddress: string) => void): Promise<MulticastTransport> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port, () => {
        socket.off('error', reject);
        socket.addMembership(options.group, options.interfaceAddress);
        socket.setMulticastInterface(options.interfaceAddress);
        socket.setMulticastTTL(1);
        socket.setMulticastLoopback(false);
        socket.on('message', (datagram, remote) => onDatagram(datagram, remote.address));
        resolve(new MulticastTransport(socket, options));
      });
    });
  }

  send(datagram: Buffer): void {
    this.socket.send(datagram, this.options.port, this.options.group);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
