{
  name: 'payments',
  replicas: ,
}
