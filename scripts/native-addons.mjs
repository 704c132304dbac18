// natpunch's optional native addons: native/<name>/, what is lost without each, and the file
// node-gyp builds (its binding.gyp target_name). Shared by build-native.mjs and prebuild.mjs.
export const addons = {
  'tcp-ttl': {
    file: 'tcp_ttl',
    without: 'TCP TTL priming unavailable (TCP punching works without it unless both NATs answer early SYNs with RST)',
  },
  'udp-batch': {
    file: 'udp_batch',
    without: 'batched UDP sends and receives unavailable (sockets send and read one datagram per system call, slower but the same)',
  },
  aead: {
    file: 'aead',
    without: 'native datagram AEAD unavailable (datagrams are sealed with node:crypto, slower but byte for byte the same)',
  },
};

/** Where the package carries an addon prebuilt for this platform (node-gyp-build's layout). */
export function prebuiltFile(name) {
  return `native/${name}/prebuilds/${process.platform}-${process.arch}/${addons[name].file}.node`;
}
