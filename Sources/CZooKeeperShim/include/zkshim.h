/* placeholder, owned by the ZooKeeper client work */
