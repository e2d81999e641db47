"""The textbook conversion of YUV 4:2:0 frames to RGB, in float64 NumPy, independent of the library:
the tests' reference for tensorbridge.convert_frames (CPU and GPU), and the generator of frames."""
import numpy

KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def rgb(y, u, v, standard="bt709", full_range=False, bits=8):
    """R, G, B (…, H, W, 3) on a 0-255 scale, clamped, from luma (…, H, W) and chroma (…, H/2, W/2)
    sample arrays: Y' = (Y - 16)/219, Cb' = (Cb - 128)/224 (limited range, × 256 for 16-bit
    samples) or Y/max, (Cb - mid)/max (full range); R = Y' + 2(1-Kr)Cr', B = Y' + 2(1-Kb)Cb',
    G = (Y' - Kr R - Kb B)/Kg; chroma repeated over each 2x2 block."""
    kr, kb = KR_KB[standard]
    kg = 1 - kr - kb
    unit = 256.0 if bits == 16 else 1.0
    up = lambda c: numpy.repeat(numpy.repeat(c.astype(numpy.float64), 2, axis=-2), 2, axis=-1)
    y, cb, cr = y.astype(numpy.float64), up(u), up(v)
    if full_range:
        top = 255.0 if bits == 8 else 65535.0
        yn, cbn, crn = y / top, (cb - 128 * unit) / top, (cr - 128 * unit) / top
    else:
        yn, cbn, crn = (y - 16 * unit) / (219 * unit), (cb - 128 * unit) / (224 * unit), (cr - 128 * unit) / (224 * unit)
    r = yn + 2 * (1 - kr) * crn
    b = yn + 2 * (1 - kb) * cbn
    g = (yn - kr * r - kb * b) / kg
    return numpy.clip(numpy.stack([r, g, b], -1) * 255.0, 0.0, 255.0)


def random_planes(rng, batch, height, width, bits=8):
    """Random Y (N, H, W), U and V (N, H/2, W/2) samples over the whole range."""
    dtype = numpy.uint8 if bits == 8 else numpy.uint16
    top = 256 if bits == 8 else 65536
    y = rng.integers(0, top, (batch, height, width)).astype(dtype)
    u = rng.integers(0, top, (batch, height // 2, width // 2)).astype(dtype)
    v = rng.integers(0, top, (batch, height // 2, width // 2)).astype(dtype)
    return y, u, v


def nv12(y, u, v):
    """One (N, 3H/2, W) NV12 (or P016) array: Y rows, then rows of interleaved U, V."""
    n, h, w = y.shape
    uv = numpy.stack([u, v], -1).reshape(n, h // 2, w)
    return numpy.concatenate([y, uv], axis=1)


def i420(y, u, v):
    """One (N, 3H/2, W) I420 array: Y, then the U plane, then the V plane, packed."""
    n, h, w = y.shape
    chroma = numpy.concatenate([u.reshape(n, -1), v.reshape(n, -1)], axis=1).reshape(n, h // 2, w)
    return numpy.concatenate([y, chroma], axis=1)
