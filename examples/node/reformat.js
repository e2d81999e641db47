// A Node.js consumer of libtensorbridge's C ABI through koffi (no compiler, no addon of our own):
// wraps an HWC uint8 image held in host memory, takes a CHW view, reformats it into a second
// wrapped buffer, checks every element, checks two failing calls, and checks that every handle
// was released. Exits non-zero on the first failed check.
//
//   npm ci && node reformat.js
//   TENSORBRIDGE_LIBRARY=/path/to/libtensorbridge.so node reformat.js
//
// The library defaults to the build tree's target/release/libtensorbridge.so.
'use strict';

const path = require('node:path');
const assert = require('node:assert/strict');
const koffi = require('koffi');

const libraryPath =
  process.env.TENSORBRIDGE_LIBRARY ||
  path.join(__dirname, '..', '..', 'target', 'release', 'libtensorbridge.so');
const lib = koffi.load(libraryPath);

// The declarations of include/tensorbridge.h that this program uses, in koffi's C syntax.
const TB_SUCCESS = 0;
const TB_ERROR_INVALID_ARGUMENT = 1;
const TB_ERROR_READ_ONLY = 7;
const TB_DEVICE_CPU = 1;
const TB_DTYPE_CODE_UINT = 1;

koffi.opaque('TbTensor');
koffi.struct('TbDevice', { device_type: 'int32_t', device_id: 'int32_t' });
koffi.struct('TbDataType', { code: 'uint8_t', bits: 'uint8_t', lanes: 'uint16_t' });
koffi.proto('void TbCleanupFn(void *context, void *data)');

const tb = {
  wrap: lib.func(
    'int32_t tb_tensor_wrap(void *data, TbDevice device, TbDataType dtype, int32_t rank, ' +
      'const int64_t *shape, const int64_t *strides, const char *layout, bool readonly, ' +
      'TbCleanupFn *cleanup, void *cleanup_context, _Out_ TbTensor **out)'
  ),
  permute: lib.func(
    'int32_t tb_tensor_permute(const TbTensor *tensor, const char *layout, _Out_ TbTensor **out)'
  ),
  shape: lib.func(
    'int32_t tb_tensor_shape(const TbTensor *tensor, int32_t capacity, _Out_ int64_t *out)'
  ),
  strides: lib.func(
    'int32_t tb_tensor_strides(const TbTensor *tensor, int32_t capacity, _Out_ int64_t *out)'
  ),
  reformat: lib.func('int32_t tb_reformat(const TbTensor *src, const TbTensor *dst, void *stream)'),
  release: lib.func('int32_t tb_tensor_release(TbTensor *tensor)'),
  liveCount: lib.func('int32_t tb_tensor_live_count(_Out_ int64_t *count)'),
  lastError: lib.func('const char *tb_last_error_message(void)'),
  statusName: lib.func('const char *tb_status_name(int32_t status)'),
  version: lib.func('const char *tb_version_string(void)'),
};

function check(status, what) {
  if (status !== TB_SUCCESS) {
    throw new Error(`${what}: ${tb.statusName(status)}: ${tb.lastError()}`);
  }
}

const cpu = { device_type: TB_DEVICE_CPU, device_id: 0 };
const uint8 = { code: TB_DTYPE_CODE_UINT, bits: 8, lanes: 1 };
const [H, W, C] = [4, 5, 3];
const bytes = H * W * C;

// The tensors keep the memory's address after tb_tensor_wrap returns, so it must not move: koffi
// moves nothing it allocated, whereas a Buffer or TypedArray passed as a pointer is valid only
// during the call (V8 may move a small typed array's storage). Node Buffers over that memory
// (koffi.view) let JavaScript fill and read it in place.
const srcMemory = koffi.alloc('uint8_t', bytes);
const dstMemory = koffi.alloc('uint8_t', bytes);
const image = Buffer.from(koffi.view(srcMemory, bytes)); // HWC
const planar = Buffer.from(koffi.view(dstMemory, bytes)); // CHW
for (let i = 0; i < bytes; i++) image[i] = (i * 7 + 3) % 256;
planar.fill(0);

// The cleanup callback runs once per wrapped buffer, when its last reference (tensor and views)
// goes; tensorbridge never frees memory it wrapped.
const cleanups = [];
const cleanup = koffi.register((context, data) => {
  cleanups.push(koffi.address(data));
}, 'TbCleanupFn *');

function wrap(memory, shape, layout, readonly, withCleanup) {
  const out = [null];
  const status = tb.wrap(memory, cpu, uint8, shape.length, BigInt64Array.from(shape.map(BigInt)),
    null, layout, readonly, withCleanup ? cleanup : null, null, out);
  return { status, tensor: out[0] };
}

function int64s(fn, tensor, rank) {
  const out = new BigInt64Array(rank);
  check(fn(tensor, rank, out), fn.name);
  return Array.from(out, Number);
}

console.log(`tensorbridge ${tb.version()} from ${libraryPath}`);

// 1. Wrap the HWC image and take a zero-copy CHW view of it.
let r = wrap(srcMemory, [H, W, C], 'HWC', false, true);
check(r.status, 'tb_tensor_wrap(HWC)');
const hwc = r.tensor;
const view = [null];
check(tb.permute(hwc, 'CHW', view), 'tb_tensor_permute');
const chwView = view[0];
assert.deepEqual(int64s(tb.shape, chwView, 3), [C, H, W], 'CHW view shape');
assert.deepEqual(int64s(tb.strides, chwView, 3), [1, W * C, C], 'CHW view strides (bytes)');

// 2. Reformat the view into a second wrapped buffer, packed CHW.
r = wrap(dstMemory, [C, H, W], 'CHW', false, true);
check(r.status, 'tb_tensor_wrap(CHW)');
const chw = r.tensor;
check(tb.reformat(chwView, chw, null), 'tb_reformat');
for (let c = 0; c < C; c++) {
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const want = image[(y * W + x) * C + c];
      const got = planar[(c * H + y) * W + x];
      if (got !== want) throw new Error(`planar[${c}][${y}][${x}] = ${got}, want ${want}`);
    }
  }
}
console.log(`reformat HWC [${H}, ${W}, ${C}] -> CHW: ${bytes} elements match`);

// 3. Errors: each failing call returns its TbStatus, and the thread's message names the argument.
r = wrap(srcMemory, [H, W, -5], 'HWC', false, false);
assert.equal(r.status, TB_ERROR_INVALID_ARGUMENT, tb.statusName(r.status));
assert.equal(r.tensor, null, 'a failed wrap writes NULL');
assert.match(tb.lastError(), /tb_tensor_wrap: shape\[2\] = -5/);
console.log(`negative extent: ${tb.statusName(r.status)}: ${tb.lastError()}`);

r = wrap(dstMemory, [C, H, W], 'CHW', true, false);
check(r.status, 'tb_tensor_wrap(read-only CHW)');
const readonly = r.tensor;
const status = tb.reformat(chwView, readonly, null);
assert.equal(status, TB_ERROR_READ_ONLY, tb.statusName(status));
assert.match(tb.lastError(), /^tb_reformat: destination tensor is read-only/);
console.log(`read-only destination: ${tb.statusName(status)}: ${tb.lastError()}`);

// 4. Release everything: each cleanup runs exactly once, and no handle is left.
for (const t of [readonly, chw, chwView]) check(tb.release(t), 'tb_tensor_release');
assert.deepEqual(cleanups, [koffi.address(dstMemory)], 'the CHW buffer was cleaned up once');
check(tb.release(hwc), 'tb_tensor_release');
assert.deepEqual(cleanups, [koffi.address(dstMemory), koffi.address(srcMemory)]);
const live = new BigInt64Array(1);
check(tb.liveCount(live), 'tb_tensor_live_count');
assert.equal(live[0], 0n, 'tb_tensor_live_count after releasing everything');
koffi.unregister(cleanup);
koffi.free(srcMemory);
koffi.free(dstMemory);
console.log('released: 2 cleanups ran once each, tb_tensor_live_count = 0');
console.log('node example: OK');
