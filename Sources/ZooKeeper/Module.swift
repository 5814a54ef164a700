// ZooKeeper module
