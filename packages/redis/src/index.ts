/**
 * @oncely/redis: the Oncely store on Redis, Valkey and Redis Cluster. One Lua script per step, one
 * round trip each; binary bodies; bring your own connected ioredis or node-redis client.
 */
export {
  fromIoredis,
  fromNodeRedis,
  type IoredisClient,
  type NodeRedisClient,
  type NodeRedisCluster,
  type NodeRedisCommandOptions,
  type RedisClient,
  type RedisCommand,
  type RedisCommands,
} from './redis-commands.ts';
export { REDIS_DEFAULTS, type RedisStore, type RedisStoreOptions, redisStore } from './redis-store.ts';
