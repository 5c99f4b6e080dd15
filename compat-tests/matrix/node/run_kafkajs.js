// kafkajs runner of the compatibility matrix. run.sh starts a fresh broker and passes
// OXBOW_BOOTSTRAP and MATRIX_OUT (JSON lines {"client","version","scenario","result","note"}).
'use strict'
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const fs = require('fs')
const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')

const BOOTSTRAP = process.env.OXBOW_BOOTSTRAP || '127.0.0.1:9092'
const OUT = process.env.MATRIX_OUT
const VERSION = process.env.MATRIX_VERSION || require('kafkajs/package.json').version
const RUN_ID = String(Date.now() % 10000000)
const kafka = new Kafka({ clientId: 'oxbow-matrix', brokers: [BOOTSTRAP], logLevel: logLevel.ERROR,
  retry: { retries: 5, initialRetryTime: 100 } })

class NotApplicable extends Error {}
const topic = (name) => `mx-${name}-${RUN_ID}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
function check (cond, msg) { if (!cond) throw new Error(msg) }

function emit (scenario, result, note) {
  const line = JSON.stringify({ client: 'kafkajs', version: VERSION, scenario, result, note: note || '' })
  console.log(line)
  if (OUT) fs.appendFileSync(OUT, line + '\n')
}

async function run (scenario, fn) {
  const start = Date.now()
  let timer
  try {
    await Promise.race([fn(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('timed out after 120s')), 120000) })])
    emit(scenario, 'pass')
  } catch (e) {
    if (e instanceof NotApplicable) emit(scenario, 'n/a', e.message)
    else { console.error(e); emit(scenario, 'fail', `${e.name}: ${e.message}`.slice(0, 400)) }
  } finally { clearTimeout(timer) }
  console.error(`  [kafkajs ${VERSION}] ${scenario}: ${((Date.now() - start) / 1000).toFixed(1)}s`)
}

async function waitUntil (what, ms, f) {
  const deadline = Date.now() + ms
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`)
    await sleep(100)
  }
}

function records (n, tag) {
  const rs = []
  for (let i = 0; i < n; i++) rs.push({ key: `k${i % 4}`, value: `${tag}-${i}`, headers: { h: ['1', '2'], x: `y${i}` } })
  return rs
}

async function withProducer (opts, fn) {
  const p = kafka.producer(Object.assign({ allowAutoTopicCreation: true }, opts))
  await p.connect()
  try { return await fn(p) } finally { await p.disconnect() }
}

async function send (p, t, rs, extra = {}) {
  return p.send(Object.assign({ topic: t, acks: -1, messages: rs }, extra))
}

// every record of t (all partitions, from the beginning) through a fresh group
async function consumeAll (t, n, opts = {}) {
  const c = kafka.consumer(Object.assign({ groupId: topic('reader-' + Math.random()), maxWaitTimeInMs: 200 }, opts))
  const got = []
  await c.connect()
  try {
    await c.subscribe({ topic: t, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => { got.push(Object.assign({ partition }, message)) } })
    await waitUntil(`${n} records`, 30000, () => got.length >= n).catch(() => {})
    await sleep(300)
    return got
  } finally { await c.disconnect() }
}

const str = (b) => (b === null || b === undefined ? b : b.toString())
const hdrs = (m) => Object.fromEntries(Object.entries(m.headers || {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(str) : str(v)]))

function same (got, want) {
  check(got.length === want.length, `got ${got.length} records, want ${want.length}`)
  const byValue = new Map(got.map((m) => [str(m.value), m]))
  for (const w of want) {
    const m = byValue.get(w.value)
    check(m, `missing ${w.value}`)
    check(str(m.key) === w.key && JSON.stringify(hdrs(m)) === JSON.stringify(w.headers),
      `${w.value}: key ${str(m.key)} headers ${JSON.stringify(hdrs(m))}`)
  }
}

async function withAdmin (fn) {
  const a = kafka.admin()
  await a.connect()
  try { return await fn(a) } finally { await a.disconnect() }
}

async function metadataAutocreate () {
  const t = topic('auto')
  await withProducer({}, (p) => send(p, t, records(1, 'a')))
  await withAdmin(async (a) => {
    const md = await a.fetchTopicMetadata({ topics: [t] })
    check(md.topics[0].partitions.length === 3, `partitions ${md.topics[0].partitions.length}`)
    const cl = await a.describeCluster()
    check(cl.brokers.length === 1, `brokers ${JSON.stringify(cl.brokers)}`)
  })
}

const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD }

async function codec (name) {
  if (name === 'lz4' || name === 'zstd') {
    throw new NotApplicable(`kafkajs implements only gzip (snappy through the pure-JS kafkajs-snappy plugin, used here); its ${name} plugins are native modules`)
  }
  const t = topic('codec-' + name)
  const want = records(20, name)
  await withProducer({}, (p) => send(p, t, want, { compression: CODECS[name] }))
  same(await consumeAll(t, 20), want)
}

async function keyed () {
  const t = topic('keyed')
  const rs = []
  for (let i = 0; i < 36; i++) rs.push({ key: `key${i % 6}`, value: String(i) })
  await withProducer({}, (p) => send(p, t, rs))
  const got = await consumeAll(t, 36)
  check(got.length === 36, `consumed ${got.length}`)
  const parts = {}
  for (const m of got) (parts[str(m.key)] = parts[str(m.key)] || new Set()).add(m.partition)
  check(Object.values(parts).every((s) => s.size === 1), 'a key in two partitions')
  check(new Set(Object.values(parts).map((s) => [...s][0])).size > 1, 'every key in one partition')
  for (const k of Object.keys(parts)) {
    const vals = got.filter((m) => str(m.key) === k).sort((a, b) => Number(a.offset) - Number(b.offset)).map((m) => Number(str(m.value)))
    check(JSON.stringify(vals) === JSON.stringify([...vals].sort((a, b) => a - b)), `order of ${k}`)
  }
}

async function readFrom (t, partition, offset, n, opts = {}) {
  const c = kafka.consumer(Object.assign({ groupId: topic('seek-' + Math.random()), maxWaitTimeInMs: 200 }, opts))
  const got = []
  await c.connect()
  try {
    await c.subscribe({ topic: t, fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ partition: p, message }) => { if (p === partition) got.push(message) } })
    c.seek({ topic: t, partition, offset: String(offset) })
    await waitUntil(`${n} records`, 20000, () => got.length >= n)
    await sleep(300)
    return got
  } finally { await c.disconnect() }
}

async function seekOffset () {
  const t = topic('seek')
  await withProducer({}, (p) => send(p, t, records(20, 's').map((r) => Object.assign(r, { partition: 0 }))))
  const got = await readFrom(t, 0, 7, 13)
  check(got.length === 13 && got[0].offset === '7' && str(got[0].value) === 's-7', `from 7: ${got.map((m) => m.offset)}`)
  await withAdmin(async (a) => {
    const o = (await a.fetchTopicOffsets(t)).find((x) => x.partition === 0)
    check(o.high === '20' && o.low === '0', `watermarks ${JSON.stringify(o)}`)
  })
}

async function seekTimestamp () {
  const t = topic('ts')
  const base = (Math.floor(Date.now() / 1000) - 3600) * 1000
  await withProducer({}, (p) => send(p, t, records(20, 't').map((r, i) => Object.assign(r, { partition: 0, timestamp: String(base + i * 1000) }))))
  await withAdmin(async (a) => {
    const at = async (ts) => (await a.fetchTopicOffsetsByTimestamp(t, ts)).find((x) => x.partition === 0).offset
    check(await at(base + 7500) === '8', `by timestamp +7.5s: ${await at(base + 7500)}`)
    check(await at(base - 1000) === '0', `before: ${await at(base - 1000)}`)
    const after = await at(base + 60000)
    check(after === '20' || after === '-1', `after the last: ${after}`)
  })
  const got = await readFrom(t, 0, 8, 12)
  check(str(got[0].value) === 't-8' && got[0].timestamp === String(base + 8000), `first after seek ${str(got[0].value)} ${got[0].timestamp}`)
}

async function member (g, t) {
  const c = kafka.consumer({ groupId: g, maxWaitTimeInMs: 200, heartbeatInterval: 500, rebalanceTimeout: 10000 })
  const m = { c, got: [], assigned: [] }
  c.on(c.events.GROUP_JOIN, (e) => { m.assigned = (e.payload.memberAssignment[t] || []) })
  await c.connect()
  await c.subscribe({ topic: t, fromBeginning: true })
  await c.run({ autoCommitInterval: 200, eachMessage: async ({ message }) => { m.got.push(message) } })
  return m
}

async function group () {
  const t = topic('group'); const g = topic('g')
  await withAdmin((a) => a.createTopics({ topics: [{ topic: t, numPartitions: 3 }] }))
  const a = await member(g, t)
  await waitUntil('first member assigned 3 partitions', 30000, () => a.assigned.length === 3)
  const b = await member(g, t)
  await waitUntil('rebalance to 2 members', 30000, () => a.assigned.length && b.assigned.length && a.assigned.length + b.assigned.length === 3)
  const want = records(30, 'm')
  await withProducer({}, (p) => send(p, t, want))
  await waitUntil('30 records', 30000, () => a.got.length + b.got.length >= 30)
  await sleep(500)
  check(a.got.length && b.got.length, `a member got nothing: ${a.got.length}/${b.got.length}`)
  const vals = (ms) => ms.map((m) => str(m.value)).sort()
  check(JSON.stringify(vals([...a.got, ...b.got])) === JSON.stringify(want.map((r) => r.value).sort()), 'records differ')
  await a.c.disconnect()
  await b.c.disconnect()
  const more = records(10, 'r')
  await withProducer({}, (p) => send(p, t, more))
  const c = await member(g, t)
  try {
    await waitUntil('resumed member reads 10', 30000, () => c.got.length >= 10)
    await sleep(500)
    check(JSON.stringify(vals(c.got)) === JSON.stringify(more.map((r) => r.value).sort()), `resumed read ${vals(c.got)}`)
  } finally { await c.c.disconnect() }
}

async function idempotent () {
  const t = topic('idem')
  const want = records(30, 'i')
  await withProducer({ idempotent: true, maxInFlightRequests: 1 }, async (p) => {
    for (let i = 0; i < 3; i++) await send(p, t, want.slice(i * 10, i * 10 + 10))
  })
  same(await consumeAll(t, 30), want)
}

async function adminTopics () {
  const t = topic('admin')
  await withAdmin(async (a) => {
    check(await a.createTopics({ topics: [{ topic: t, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] }), 'create returned false')
    check(!(await a.createTopics({ topics: [{ topic: t, numPartitions: 2 }] })), 'second create returned true')
    check((await a.fetchTopicMetadata({ topics: [t] })).topics[0].partitions.length === 2, '2 partitions')
    await a.createPartitions({ topicPartitions: [{ topic: t, count: 4 }] })
    check((await a.fetchTopicMetadata({ topics: [t] })).topics[0].partitions.length === 4, '4 partitions after grow')
    await a.deleteTopics({ topics: [t] })
    await waitUntil('topic gone', 10000, async () => !(await a.listTopics()).includes(t))
  })
}

async function adminConfigs () {
  const t = topic('cfg')
  await withAdmin(async (a) => {
    await a.createTopics({ topics: [{ topic: t, numPartitions: 1 }] })
    const get = async (name) => {
      const r = await a.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t }], includeSynonyms: false })
      const e = r.resources[0].configEntries.find((x) => x.configName === name)
      return e && e.configValue
    }
    check(await get('cleanup.policy') === 'delete', `cleanup.policy ${await get('cleanup.policy')}`)
    await a.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: 'retention.ms', value: '12345678' }] }] })
    check(await get('retention.ms') === '12345678', `retention.ms after alter ${await get('retention.ms')}`)
  })
}

async function groupAdmin () {
  const t = topic('gadmin'); const g = topic('ga')
  await withProducer({}, (p) => send(p, t, records(10, 'g')))
  await withAdmin(async (a) => {
    const m = await member(g, t)
    try {
      await waitUntil('member reads 10', 30000, () => m.got.length >= 10)
      const d = (await a.describeGroups([g])).groups[0]
      check(d.state === 'Stable' && d.members.length === 1, `describe ${d.state} ${d.members.length}`)
    } finally { await m.c.disconnect() }
    const committed = async () => (await a.fetchOffsets({ groupId: g, topics: [t] }))[0].partitions
      .reduce((s, p) => s + Math.max(Number(p.offset), 0), 0)
    check(await committed() === 10, `committed sum ${await committed()}`)
    check((await a.listGroups()).groups.some((x) => x.groupId === g), 'group not listed')
    await a.resetOffsets({ groupId: g, topic: t, earliest: true })
    check(await committed() === 0, `after reset committed sum ${await committed()}`)
    await a.deleteGroups([g])
    check(!(await a.listGroups()).groups.some((x) => x.groupId === g), 'still listed after delete')
  })
}

async function transactions () {
  const t = topic('txn')
  await withProducer({ transactionalId: topic('tx'), idempotent: true, maxInFlightRequests: 1 }, async (p) => {
    for (const [tag, commit] of [['c1', true], ['ab', false], ['c2', true]]) {
      const txn = await p.transaction()
      await txn.send({ topic: t, acks: -1, messages: records(5, tag).map((r) => Object.assign(r, { partition: 0 })) })
      if (commit) await txn.commit(); else await txn.abort()
    }
  })
  const rc = (await consumeAll(t, 10, { readUncommitted: false })).map((m) => str(m.value))
  const want = [...records(5, 'c1'), ...records(5, 'c2')].map((r) => r.value)
  check(JSON.stringify(rc) === JSON.stringify(want), `read_committed ${rc}`)
  const ru = await consumeAll(t, 15, { readUncommitted: true })
  check(ru.length === 15, `read_uncommitted got ${ru.length}`)
}

async function main () {
  await run('metadata_autocreate', metadataAutocreate)
  for (const c of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) await run('codec_' + c, () => codec(c))
  await run('keyed_partitioning', keyed)
  await run('seek_offset', seekOffset)
  await run('seek_timestamp', seekTimestamp)
  await run('group_rebalance_commit', group)
  await run('idempotent_produce', idempotent)
  await run('admin_topics', adminTopics)
  await run('admin_configs', adminConfigs)
  await run('group_admin', groupAdmin)
  await run('transactions', transactions)
  process.exit(0)
}
main()
