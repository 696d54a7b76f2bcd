{
  version: '1.2.0',
  ports: { http: 8080, metrics: 9090 },
  replicas(env):: if env == 'production' then 3 else 1,
}
