local lib = import 'lib.libsonnet';

{
  name: 'payments',
  replicas: lib.replicas('production'),
  image: 'registry.example.com/payments:%s' % lib.version,
  ports: [{ name: p, port: lib.ports[p] } for p in std.objectFields(lib.ports)],
  privileged: true,
}
