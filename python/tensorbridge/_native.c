/* The optional compiled fast path of the Python package (tensorbridge._native).
 *
 * It removes ctypes from the calls made per tensor: the Tensor base type owns its library handle
 * in C (released when the object goes, no __del__), and exchange-API imports and operations on
 * framework tensors make their library calls from here. It calls only the library's C ABI,
 * through the addresses of the functions ctypes already loaded (init()), so the library stays
 * the single boundary and this module never links against it. Built against the stable ABI
 * (abi3, Python >= 3.9); when it cannot be built or imported, the package's ctypes code does the
 * same work, only slower. */
#define Py_LIMITED_API 0x03090000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

#include "tensorbridge.h" /* the library's C ABI: its types (functions are called by address) */

typedef int (*ImportFn)(const void *api, void *py_object, const char *layout, void **out);
typedef int (*ReleaseFn)(void *tensor);
typedef int (*IntoFn)(const void *src, void *dst, void *stream);
typedef int (*NewFn)(const void *src, const char *layout, void *stream, void **out);
typedef int (*RelabelFn)(const void *tensor, const char *layout, void **out);
typedef int (*SelectFn)(const void *tensor, int32_t dim, int64_t index, void **out);
typedef int (*SliceFn)(const void *tensor, int32_t dim, int64_t start, int64_t stop, int64_t step, void **out);
typedef int (*WrapFn)(void *data, TbDevice device, TbDataType dtype, int32_t rank, const int64_t *shape,
                      const int64_t *strides, const char *layout, bool readonly, TbCleanupFn cleanup,
                      void *cleanup_context, void **out);
typedef int (*AllocFn)(TbDevice device, TbDataType dtype, int32_t rank, const int64_t *shape, const char *layout,
                       int64_t row_alignment, void **out);
typedef int (*AllocAsyncFn)(TbDevice device, TbDataType dtype, int32_t rank, const int64_t *shape,
                            const char *layout, int64_t row_alignment, void *stream, void **out);
typedef int (*ConvertNewFn)(const void *src, const char *layout, TbDataType dtype, const float *scale,
                            const float *offset, int32_t count, void *stream, void **out);
typedef int (*InfoFn)(const void *tensor, TbTensorInfo *out);
typedef int (*SyncFn)(const void *tensor, void *stream);
typedef int (*ExportFn)(const void *tensor, void **out);
typedef int (*ExportVersionedFn)(const void *tensor, uint64_t flags, void **out);
typedef int (*DescribeFn)(const void *tensor, TbArrayInterface *out);
typedef int (*InterfaceFn)(const TbArrayInterface *desc, const char *layout, TbCleanupFn keep_alive,
                           void *keep_alive_context, void **out);

/* The library functions this module calls (init() fills them) and the Python objects it uses. */
static struct {
  ImportFn import_owned;
  ImportFn import_borrowed;
  ReleaseFn release;
  IntoFn into[2]; /* INTO_REFORMAT, INTO_COPY */
  NewFn reformat_new;
  ConvertNewFn convert_new;
  AllocFn alloc;
  WrapFn wrap;
  RelabelFn relabel[2]; /* RELABEL_PERMUTE, RELABEL_WITH_LAYOUT */
  SelectFn select;
  SliceFn slice;
  AllocAsyncFn alloc_async;
  InterfaceFn from_interface[2]; /* [0] NumPy array interface, [1] CUDA Array Interface */
  InfoFn info;
  DescribeFn to_interface[2]; /* [0] NumPy array interface, [1] CUDA Array Interface */
  SyncFn sync;
  ExportFn to_dlpack;
  ExportVersionedFn to_dlpack_versioned;
  PyObject *raise_for;     /* raise_for(status): raises the library's error for a status */
  PyObject *api_by_type;   /* dict: type -> DLPackExchangeAPI* as an int (0: none) */
  PyTypeObject *tensor;    /* tensorbridge.Tensor, a subclass of TensorBase */
} native;

enum { INTO_REFORMAT = 0, INTO_COPY = 1 };
enum { RELABEL_PERMUTE = 0, RELABEL_WITH_LAYOUT = 1 };

/* What this module provides, as a number the Python side checks (_compiled.py): a stale build
 * left in a checkout is not used. Raise it whenever the module's functions or types change. */
#define NATIVE_API_VERSION 8

/* TensorBase: a library tensor handle owned by a Python object. */
typedef struct {
  PyObject_HEAD
  unsigned long long handle;
  PyObject *cached_info; /* the TbTensorInfo read once, or NULL */
  PyObject *owner;       /* the Python producer kept alive, or NULL */
  PyObject *weakrefs;
} TensorBase;

static PyTypeObject *tensor_base;

static int base_traverse(PyObject *self, visitproc visit, void *arg) {
  TensorBase *tensor = (TensorBase *)self;
  Py_VISIT(tensor->cached_info);
  Py_VISIT(tensor->owner);
  return 0;
}

static int base_clear(PyObject *self) {
  TensorBase *tensor = (TensorBase *)self;
  Py_CLEAR(tensor->cached_info);
  Py_CLEAR(tensor->owner);
  return 0;
}

/* Releases the handle (its status cannot be reported from a deallocator), then the object. */
static void base_dealloc(PyObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  TensorBase *tensor = (TensorBase *)self;
  PyObject_GC_UnTrack(self);
  if (tensor->weakrefs != NULL) PyObject_ClearWeakRefs(self);
  void *handle = (void *)(uintptr_t)tensor->handle;
  tensor->handle = 0;
  if (handle != NULL && native.release != NULL) native.release(handle);
  base_clear(self);
  freefunc release_memory = (freefunc)PyType_GetSlot(type, Py_tp_free);
  release_memory(self);
  Py_DECREF(type);
}

/* A new instance of `type` owning `handle` (and keeping `owner`); on failure the handle is
 * released, so a caller never leaks it. */
static PyObject *adopt(PyTypeObject *type, void *handle, PyObject *owner) {
  allocfunc allocate = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
  PyObject *object = allocate(type, 0);
  if (object == NULL) {
    if (handle != NULL) native.release(handle);
    return NULL;
  }
  TensorBase *tensor = (TensorBase *)object;
  tensor->handle = (unsigned long long)(uintptr_t)handle;
  if (owner != NULL && owner != Py_None) {
    Py_INCREF(owner);
    tensor->owner = owner;
  }
  return object;
}

/* TensorBase._adopt(handle, owner=None): a tensor of this class owning `handle`. */
static PyObject *base_adopt(PyObject *cls, PyObject *args) {
  PyObject *number, *owner = Py_None;
  if (!PyArg_UnpackTuple(args, "_adopt", 1, 2, &number, &owner)) return NULL;
  void *handle = NULL;
  if (number != Py_None) {
    handle = PyLong_AsVoidPtr(number);
    if (handle == NULL && PyErr_Occurred()) return NULL;
  }
  return adopt((PyTypeObject *)cls, handle, owner);
}

static PyMemberDef base_members[] = {
    {"_handle", T_ULONGLONG, offsetof(TensorBase, handle), READONLY,
     "The library handle (an int; 0 when none)."},
    {"_cached_info", T_OBJECT, offsetof(TensorBase, cached_info), 0,
     "The TbTensorInfo read once, or None."},
    {"_owner", T_OBJECT, offsetof(TensorBase, owner), 0, "The producer kept alive, or None."},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TensorBase, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *fail(int status);

/* The tensor's description from the library; 0, or -1 with an exception. */
static int describe(PyObject *self, TbTensorInfo *info) {
  int status = native.info((const void *)(uintptr_t)((TensorBase *)self)->handle, info);
  if (status != 0) {
    fail(status);
    return -1;
  }
  return 0;
}

/* __dlpack_device__(): (device_type, device_id), as the array API asks. */
static PyObject *base_dlpack_device(PyObject *self, PyObject *unused) {
  (void)unused;
  TbTensorInfo info;
  if (native.info == NULL || describe(self, &info) < 0) return NULL;
  return Py_BuildValue("(ii)", info.device.device_type, info.device.device_id);
}

static const char CAPSULE_LEGACY[] = "dltensor", CAPSULE_VERSIONED[] = "dltensor_versioned";

/* A capsule's destructor: the managed tensor's deleter runs unless a consumer took it (a consumer
 * renames the capsule "used_..."). Runs with the GIL held, as the capsule goes. */
static void capsule_destructor(PyObject *capsule) {
  if (PyCapsule_IsValid(capsule, CAPSULE_VERSIONED)) {
    TbDLManagedTensorVersioned *managed = PyCapsule_GetPointer(capsule, CAPSULE_VERSIONED);
    if (managed->deleter != NULL) managed->deleter(managed);
  } else if (PyCapsule_IsValid(capsule, CAPSULE_LEGACY)) {
    TbDLManagedTensor *managed = PyCapsule_GetPointer(capsule, CAPSULE_LEGACY);
    if (managed->deleter != NULL) managed->deleter(managed);
  }
  PyErr_Clear(); /* a destructor reports nothing */
}

/* The cleanup of an alias made by alias_keeping: drops its reference to the Python producer, with
 * the GIL (a DLPack consumer may free the export from any thread); after the interpreter is
 * gone there is nothing left to release. */
static void release_owner(void *owner, void *data) {
  (void)data;
  if (!Py_IsInitialized()) return;
  PyGILState_STATE state = PyGILState_Ensure();
  Py_DECREF((PyObject *)owner);
  PyGILState_Release(state);
}

/* A second library tensor over the memory `info` describes whose cleanup keeps `owner` (the
 * Python producer) alive until the last reference to it goes: for DLPack exports, which can
 * outlive every Python object. NULL with an exception on failure. */
static void *alias_keeping(PyObject *owner, const TbTensorInfo *info) {
  void *alias = NULL;
  Py_INCREF(owner);
  int status = native.wrap(info->data, info->device, info->dtype, info->rank, info->shape, info->strides,
                           info->layout.labels[0] != 0 ? info->layout.labels : NULL, info->readonly,
                           release_owner, owner, &alias);
  if (status != 0) {
    Py_DECREF(owner); /* a failed wrap never runs the cleanup */
    fail(status);
    return NULL;
  }
  return alias;
}

/* The major version asked for by `max_version` (None: 0, legacy DLPack); -1 when it is not a
 * plain tuple of ints (the Python path then takes the call). */
static long major_version(PyObject *max_version) {
  if (max_version == NULL || max_version == Py_None) return 0;
  if (!PyTuple_CheckExact(max_version) || PyTuple_Size(max_version) < 1) return -1;
  PyObject *major = PyTuple_GetItem(max_version, 0);
  if (!PyLong_CheckExact(major)) return -1;
  long value = PyLong_AsLong(major);
  if (value == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return -1;
  }
  return value < 0 ? -1 : value;
}

/* __dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None): the common export
 * (this device, no copy, a plain stream; a tensor that keeps a Python producer exports an alias
 * holding it) is made here;
 * every other call goes to the Tensor's Python implementation (_dlpack_export), which also
 * raises the errors the array API asks for. */
static PyObject *base_dlpack(PyObject *self, PyObject *args, PyObject *kwargs) {
  PyObject *stream = NULL, *max_version = NULL, *dl_device = NULL, *copy = NULL;
  int plain = native.info != NULL && PyTuple_Size(args) == 0;
  if (plain && kwargs != NULL) {
    Py_ssize_t used = 0;
    stream = PyDict_GetItemString(kwargs, "stream");
    max_version = PyDict_GetItemString(kwargs, "max_version");
    dl_device = PyDict_GetItemString(kwargs, "dl_device");
    copy = PyDict_GetItemString(kwargs, "copy");
    used = (stream != NULL) + (max_version != NULL) + (dl_device != NULL) + (copy != NULL);
    plain = used == PyDict_Size(kwargs) && (dl_device == NULL || dl_device == Py_None) &&
            (copy == NULL || copy == Py_None || copy == Py_False);
  }
  long major = plain ? major_version(max_version) : -1;
  TbTensorInfo info;
  if (major >= 0) {
    if (describe(self, &info) < 0) return NULL;
    int32_t type = info.device.device_type;
    int gpu = type == TB_DEVICE_CUDA || type == TB_DEVICE_CUDA_HOST || type == TB_DEVICE_CUDA_MANAGED;
    long long handle = -2;
    if (stream == NULL || stream == Py_None) {
      handle = gpu ? 1 : -1;
    } else if (PyLong_CheckExact(stream)) {
      handle = PyLong_AsLongLong(stream);
      if (handle == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        handle = -2;
      }
    }
    /* Plain: a GPU tensor with stream -1 or a positive handle, a host tensor with none or -1, a
     * read-only tensor only in a versioned capsule. */
    if (((gpu && (handle == -1 || handle > 0)) || (!gpu && handle == -1)) && (major >= 1 || !info.readonly)) {
      const void *tensor = (const void *)(uintptr_t)((TensorBase *)self)->handle;
      if (gpu && handle != -1) {
        int status = native.sync(tensor, (void *)(uintptr_t)handle);
        if (status != 0) return fail(status);
      }
      void *alias = NULL; /* a tensor keeping a Python producer exports an alias that holds it */
      if (((TensorBase *)self)->owner != NULL) {
        alias = alias_keeping(((TensorBase *)self)->owner, &info);
        if (alias == NULL) return NULL;
        tensor = alias;
      }
      void *managed = NULL;
      int status = major >= 1 ? native.to_dlpack_versioned(tensor, 0, &managed) : native.to_dlpack(tensor, &managed);
      if (alias != NULL) native.release(alias); /* the export holds its own reference */
      if (status != 0) return fail(status);
      PyObject *capsule = PyCapsule_New(managed, major >= 1 ? CAPSULE_VERSIONED : CAPSULE_LEGACY, capsule_destructor);
      if (capsule == NULL) {
        if (major >= 1) {
          ((TbDLManagedTensorVersioned *)managed)->deleter(managed);
        } else {
          ((TbDLManagedTensor *)managed)->deleter(managed);
        }
      }
      return capsule;
    }
  }
  PyObject *export = PyObject_GetAttrString(self, "_dlpack_export");
  if (export == NULL) return NULL;
  PyObject *result = PyObject_Call(export, args, kwargs);
  Py_DECREF(export);
  return result;
}

/* A tuple of `count` int64 values. */
static PyObject *int64_tuple(const int64_t *values, int32_t count) {
  PyObject *tuple = PyTuple_New(count);
  for (int32_t i = 0; tuple != NULL && i < count; i++) {
    PyObject *value = PyLong_FromLongLong(values[i]);
    if (value == NULL || PyTuple_SetItem(tuple, i, value) < 0) {
      Py_CLEAR(tuple);
    }
  }
  return tuple;
}

/* The interface dict of a library descriptor (`cuda`: with its stream; else with `descr`). */
static PyObject *interface_dict(const TbArrayInterface *desc, int cuda) {
  PyObject *shape = int64_tuple(desc->shape, desc->rank);
  PyObject *strides = desc->has_strides ? int64_tuple(desc->strides, desc->rank) : (Py_INCREF(Py_None), Py_None);
  PyObject *dict = NULL;
  if (shape != NULL && strides != NULL) {
    dict = Py_BuildValue("{s:i,s:(KO),s:s,s:O,s:O}", "version", 3, "data",
                         (unsigned long long)(uintptr_t)desc->data, desc->readonly ? Py_True : Py_False,
                         "typestr", desc->typestr, "shape", shape, "strides", strides);
  }
  Py_XDECREF(shape);
  Py_XDECREF(strides);
  if (dict == NULL) return NULL;
  PyObject *extra = cuda ? (desc->has_stream ? PyLong_FromUnsignedLongLong(desc->stream) : NULL)
                         : Py_BuildValue("[(ss)]", "", desc->typestr);
  const char *key = cuda ? "stream" : "descr";
  if ((cuda && desc->has_stream && extra == NULL) || (!cuda && extra == NULL) ||
      (extra != NULL && PyDict_SetItemString(dict, key, extra) < 0)) {
    Py_XDECREF(extra);
    Py_DECREF(dict);
    return NULL;
  }
  Py_XDECREF(extra);
  return dict;
}

/* __cuda_array_interface__ (closure 1) / __array_interface__ (closure 0): the library's
 * descriptor as the protocol's dict; AttributeError where the memory does not qualify, so that
 * hasattr() answers as consumers expect. */
static PyObject *base_interface(PyObject *self, void *closure) {
  int cuda = closure != NULL;
  if (native.to_interface[cuda] == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "tensorbridge._native.init() has not run");
    return NULL;
  }
  TbArrayInterface desc;
  int status = native.to_interface[cuda]((const void *)(uintptr_t)((TensorBase *)self)->handle, &desc);
  if (status == TB_ERROR_DEVICE_MISMATCH) {
    PyErr_SetString(PyExc_AttributeError, cuda ? "host tensor: no __cuda_array_interface__ (use .cuda())"
                                               : "GPU tensor: no __array_interface__ (use .cpu())");
    return NULL;
  }
  if (status != 0) return fail(status);
  return interface_dict(&desc, cuda);
}

static PyGetSetDef base_properties[] = {
    {"__cuda_array_interface__", base_interface, NULL,
     "CUDA Array Interface v3 over GPU-accessible memory, with the pending stream if any.", (void *)1},
    {"__array_interface__", base_interface, NULL, "NumPy array interface v3 over host-accessible memory.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int layout_of(PyObject *object, const char **layout);
static int read_int64(PyObject *value, int64_t *out);

/* A view of `self` the library made (`status`, then `out`: call the library before this, never in
 * its argument list, whose evaluation order C leaves open): a Tensor keeping self's producer. */
static PyObject *view_of(PyObject *self, int status, void *out) {
  if (status != 0) return fail(status);
  return adopt(native.tensor, out, ((TensorBase *)self)->owner);
}

static const void *handle_of(PyObject *self) { return (const void *)(uintptr_t)((TensorBase *)self)->handle; }

/* _relabel(which, layout): permute (0) or with_layout (1) as a view. */
static PyObject *base_relabel(PyObject *self, PyObject *args) {
  PyObject *which_object, *layout_object;
  int64_t which;
  const char *layout;
  if (native.select == NULL || !PyArg_UnpackTuple(args, "_relabel", 2, 2, &which_object, &layout_object)) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "tensorbridge._native.init() has not run");
    return NULL;
  }
  if (!read_int64(which_object, &which) || (which != RELABEL_PERMUTE && which != RELABEL_WITH_LAYOUT)) {
    PyErr_SetString(PyExc_ValueError, "_relabel: which is 0 (permute) or 1 (with_layout)");
    return NULL;
  }
  if (layout_of(layout_object, &layout) < 0) return NULL;
  void *out = NULL;
  int status = native.relabel[which](handle_of(self), layout, &out);
  return view_of(self, status, out);
}

/* The int64 arguments of a view call (checked by the Python caller); -1 with a TypeError. */
static int int64_arguments(PyObject *args, const char *name, int64_t *values, Py_ssize_t count) {
  if (PyTuple_Size(args) != count) {
    PyErr_Format(PyExc_TypeError, "%s takes %zd ints", name, count);
    return -1;
  }
  for (Py_ssize_t i = 0; i < count; i++) {
    if (!read_int64(PyTuple_GetItem(args, i), &values[i])) {
      PyErr_Format(PyExc_TypeError, "%s takes ints of int64 range", name);
      return -1;
    }
  }
  return 0;
}

/* _select(dim, index): the view at `index` along `dim`, which it drops. */
static PyObject *base_select(PyObject *self, PyObject *args) {
  int64_t values[2];
  if (native.select == NULL || int64_arguments(args, "_select", values, 2) < 0) return NULL;
  if (values[0] < INT32_MIN || values[0] > INT32_MAX) values[0] = INT32_MAX; /* out of range: refused */
  void *out = NULL;
  int status = native.select(handle_of(self), (int32_t)values[0], values[1], &out);
  return view_of(self, status, out);
}

/* _slice(dim, start, stop, step): the view of a range along `dim`. */
static PyObject *base_slice(PyObject *self, PyObject *args) {
  int64_t values[4];
  if (native.slice == NULL || int64_arguments(args, "_slice", values, 4) < 0) return NULL;
  if (values[0] < INT32_MIN || values[0] > INT32_MAX) values[0] = INT32_MAX;
  void *out = NULL;
  int status = native.slice(handle_of(self), (int32_t)values[0], values[1], values[2], values[3], &out);
  return view_of(self, status, out);
}

static PyMethodDef base_methods[] = {
    {"_adopt", base_adopt, METH_VARARGS | METH_CLASS,
     "_adopt(handle, owner=None): a tensor owning a library handle (one reference)."},
    {"_relabel", base_relabel, METH_VARARGS, "_relabel(which, layout): permute (0) or with_layout (1), a view."},
    {"_select", base_select, METH_VARARGS, "_select(dim, index): a view without dimension dim."},
    {"_slice", base_slice, METH_VARARGS, "_slice(dim, start, stop, step): a view of a range."},
    {"__dlpack_device__", base_dlpack_device, METH_NOARGS,
     "__dlpack_device__($self, /)\n--\n\n(device_type, device_id), DLPack's codes."},
    {"__dlpack__", (PyCFunction)(void (*)(void))base_dlpack, METH_VARARGS | METH_KEYWORDS,
     "__dlpack__($self, /, *, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\n"
     "A DLPack capsule (versioned when max_version >= (1, 0)), per the array API."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot base_slots[] = {
    {Py_tp_doc, "A library tensor handle owned by a Python object (released with it)."},
    {Py_tp_dealloc, base_dealloc},
    {Py_tp_traverse, base_traverse},
    {Py_tp_clear, base_clear},
    {Py_tp_members, base_members},
    {Py_tp_methods, base_methods},
    {Py_tp_getset, base_properties},
    {0, NULL},
};

static PyType_Spec base_spec = {
    "tensorbridge._native.TensorBase",
    sizeof(TensorBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    base_slots,
};

/* After a failed library call: the producer's Python exception when it set one, else the
 * library's error for `status` (raise_for raises it). Always returns NULL. */
static PyObject *fail(int status) {
  if (PyErr_Occurred()) return NULL;
  PyObject *result = PyObject_CallFunction(native.raise_for, "i", status);
  Py_XDECREF(result);
  if (!PyErr_Occurred()) PyErr_Format(PyExc_RuntimeError, "tensorbridge call failed (status %d)", status);
  return NULL;
}

static int not_ready(void) {
  if (native.tensor != NULL) return 0;
  PyErr_SetString(PyExc_RuntimeError, "tensorbridge._native.init() has not run");
  return 1;
}

/* The layout argument: bytes or None (NULL). Returns 0, or -1 with an exception. */
static int layout_of(PyObject *object, const char **layout) {
  if (object == Py_None) {
    *layout = NULL;
    return 0;
  }
  char *text;
  Py_ssize_t length;
  if (PyBytes_AsStringAndSize(object, &text, &length) < 0) return -1;
  *layout = text;
  return 0;
}

/* A pointer argument given as an int (0 or None: NULL). Returns 0, or -1 with an exception. */
static int pointer_of(PyObject *object, void **pointer) {
  *pointer = NULL;
  if (object == Py_None) return 0;
  *pointer = PyLong_AsVoidPtr(object);
  return (*pointer == NULL && PyErr_Occurred()) ? -1 : 0;
}

/* import_owned(api, obj, layout): a Tensor owning a DLPack tensor of `obj`, made by the producer's
 * exchange API table `api` (an int). */
static PyObject *import_owned(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *api_number, *object, *layout_object;
  if (not_ready() || !PyArg_UnpackTuple(args, "import_owned", 3, 3, &api_number, &object, &layout_object))
    return NULL;
  void *api;
  const char *layout;
  if (pointer_of(api_number, &api) < 0 || layout_of(layout_object, &layout) < 0) return NULL;
  void *handle = NULL;
  int status = native.import_owned(api, object, layout, &handle);
  if (status != 0 || PyErr_Occurred()) {
    if (handle != NULL) native.release(handle);
    return fail(status);
  }
  return adopt(native.tensor, handle, NULL);
}

/* One operand of an operation: a Tensor's own handle, or a handle borrowing an exchange-API
 * producer's tensor (`*borrowed` set: release it after the call). Returns 1, 0 when the operand
 * needs the Python path (the caller returns NotImplemented), or -1 with an exception. */
static int operand(PyObject *object, void **handle, void **borrowed) {
  *borrowed = NULL;
  if (PyObject_TypeCheck(object, tensor_base)) {
    *handle = (void *)(uintptr_t)((TensorBase *)object)->handle;
    return 1;
  }
  PyObject *api_number = PyDict_GetItem(native.api_by_type, (PyObject *)Py_TYPE(object));
  if (api_number == NULL) return 0; /* a type not seen yet: the Python path looks it up */
  void *api = PyLong_AsVoidPtr(api_number);
  if (api == NULL) return PyErr_Occurred() ? -1 : 0;
  int status = native.import_borrowed(api, object, NULL, borrowed);
  if (status != 0 || PyErr_Occurred()) {
    if (*borrowed != NULL) native.release(*borrowed);
    *borrowed = NULL;
    fail(status);
    return -1;
  }
  *handle = *borrowed;
  return 1;
}

/* into(which, dst, src, stream): writes `src` into `dst` (which: 0 reformat, 1 copy) on `stream`
 * (an int; 0 or None: the legacy default stream) and returns `dst`; NotImplemented when an
 * operand needs the Python path. */
static PyObject *into(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *which_object, *dst, *src, *stream_object;
  if (not_ready() || !PyArg_UnpackTuple(args, "into", 4, 4, &which_object, &dst, &src, &stream_object))
    return NULL;
  long which = PyLong_AsLong(which_object);
  if (which != INTO_REFORMAT && which != INTO_COPY) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "into: which is 0 (reformat) or 1 (copy)");
    return NULL;
  }
  void *stream;
  if (pointer_of(stream_object, &stream) < 0) return NULL;
  void *src_handle, *dst_handle, *src_borrowed, *dst_borrowed = NULL;
  int found = operand(src, &src_handle, &src_borrowed);
  if (found == 1) found = operand(dst, &dst_handle, &dst_borrowed);
  PyObject *result = NULL;
  if (found == 0) {
    result = Py_NotImplemented;
    Py_INCREF(result);
  } else if (found == 1) {
    int status = native.into[which](src_handle, dst_handle, stream);
    if (status == 0) {
      result = dst;
      Py_INCREF(result);
    } else {
      fail(status);
    }
  }
  if (src_borrowed != NULL) native.release(src_borrowed);
  if (dst_borrowed != NULL) native.release(dst_borrowed);
  return result;
}

/* reformat_new(src, layout, stream): a new Tensor holding `src` in `layout` (bytes), allocated
 * ordered on `stream`; NotImplemented when `src` needs the Python path. */
static PyObject *reformat_new(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *src, *layout_object, *stream_object;
  if (not_ready() || !PyArg_UnpackTuple(args, "reformat_new", 3, 3, &src, &layout_object, &stream_object))
    return NULL;
  const char *layout;
  void *stream;
  if (layout_of(layout_object, &layout) < 0 || pointer_of(stream_object, &stream) < 0) return NULL;
  void *src_handle, *borrowed;
  int found = operand(src, &src_handle, &borrowed);
  if (found <= 0) {
    if (found < 0) return NULL;
    Py_RETURN_NOTIMPLEMENTED;
  }
  void *out = NULL;
  int status = native.reformat_new(src_handle, layout, stream, &out);
  if (borrowed != NULL) native.release(borrowed);
  if (status != 0) return fail(status);
  return adopt(native.tensor, out, NULL);
}

/* Stores a new reference to `value` in `*slot`, releasing the one it held. */
static void replace(PyObject **slot, PyObject *value) {
  PyObject *old = *slot;
  Py_INCREF(value);
  *slot = value;
  Py_XDECREF(old);
}

/* The interface dict's keys, interned once (PyInit__native). */
static PyObject *key_data, *key_shape, *key_typestr, *key_strides, *key_version, *key_stream, *key_mask;

/* Reading an interface dict: 1 read, 0 when a value is not of the plain form this reader takes
 * (the Python reader then takes the dict, and reports what is wrong with it). Only exact builtin
 * types are read, so none of the producer's code runs. */
static int read_int64(PyObject *value, int64_t *out) {
  if (!PyLong_CheckExact(value)) return 0;
  long long number = PyLong_AsLongLong(value);
  if (number == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  *out = number;
  return 1;
}

static int read_uint64(PyObject *value, uint64_t *out) {
  if (!PyLong_CheckExact(value)) return 0;
  unsigned long long number = PyLong_AsUnsignedLongLong(value);
  if (number == (unsigned long long)-1 && PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  *out = number;
  return 1;
}

static int read_extents(PyObject *value, int64_t *out, Py_ssize_t *count) {
  if (!PyTuple_CheckExact(value)) return 0;
  Py_ssize_t n = PyTuple_Size(value);
  if (n > TB_MAX_RANK) return 0;
  for (Py_ssize_t i = 0; i < n; i++)
    if (!read_int64(PyTuple_GetItem(value, i), &out[i])) return 0;
  *count = n;
  return 1;
}

/* Fills `desc` from an interface dict (`cuda`: the CUDA Array Interface, which has `stream`). */
static int read_interface(PyObject *interface, int cuda, TbArrayInterface *desc) {
  if (!PyDict_CheckExact(interface)) return 0;
  PyObject *data = PyDict_GetItem(interface, key_data);
  PyObject *shape = PyDict_GetItem(interface, key_shape);
  PyObject *typestr = PyDict_GetItem(interface, key_typestr);
  if (data == NULL || shape == NULL || typestr == NULL) return 0;
  PyObject *version = PyDict_GetItem(interface, key_version);
  int64_t number = 0;
  if (version != NULL && (!read_int64(version, &number) || number < INT32_MIN || number > INT32_MAX)) return 0;
  desc->version = (int32_t)number;
  if (!PyTuple_CheckExact(data) || PyTuple_Size(data) != 2) return 0;
  PyObject *pointer = PyTuple_GetItem(data, 0), *readonly = PyTuple_GetItem(data, 1);
  uint64_t address = 0;
  if (pointer != Py_None && !read_uint64(pointer, &address)) return 0;
  desc->data = (void *)(uintptr_t)address;
  if (readonly == Py_True || readonly == Py_False) {
    desc->readonly = readonly == Py_True;
  } else {
    int64_t flag;
    if (!read_int64(readonly, &flag)) return 0;
    desc->readonly = flag != 0;
  }
  if (!PyUnicode_CheckExact(typestr)) return 0;
  PyObject *ascii = PyUnicode_AsASCIIString(typestr);
  if (ascii == NULL) {
    PyErr_Clear();
    return 0;
  }
  Py_ssize_t length = PyBytes_Size(ascii);
  if (length >= TB_TYPESTR_CAPACITY || memchr(PyBytes_AsString(ascii), 0, (size_t)length) != NULL) {
    Py_DECREF(ascii);
    return 0;
  }
  memcpy(desc->typestr, PyBytes_AsString(ascii), (size_t)length + 1);
  Py_DECREF(ascii);
  Py_ssize_t rank;
  if (!read_extents(shape, desc->shape, &rank)) return 0;
  desc->rank = (int32_t)rank;
  PyObject *strides = PyDict_GetItem(interface, key_strides);
  desc->has_strides = strides != NULL && strides != Py_None;
  if (desc->has_strides) {
    Py_ssize_t count;
    if (!read_extents(strides, desc->strides, &count) || count != rank) return 0;
  }
  PyObject *stream = cuda ? PyDict_GetItem(interface, key_stream) : NULL;
  desc->has_stream = stream != NULL && stream != Py_None;
  if (desc->has_stream && !read_uint64(stream, &desc->stream)) return 0;
  PyObject *mask = PyDict_GetItem(interface, key_mask);
  desc->has_mask = mask != NULL && mask != Py_None;
  return 1;
}

/* import_interface(cuda, interface, layout, owner): a Tensor over the memory an interface dict
 * describes (`cuda`: a __cuda_array_interface__, else an __array_interface__), keeping `owner`
 * alive; NotImplemented when the dict is not of the plain form read here. */
static PyObject *import_interface(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *cuda_object, *interface, *layout_object, *owner;
  if (not_ready() || !PyArg_UnpackTuple(args, "import_interface", 4, 4, &cuda_object, &interface,
                                        &layout_object, &owner))
    return NULL;
  int cuda = PyObject_IsTrue(cuda_object);
  const char *layout;
  if (cuda < 0 || layout_of(layout_object, &layout) < 0) return NULL;
  TbArrayInterface desc;
  memset(&desc, 0, sizeof desc);
  if (!read_interface(interface, cuda, &desc)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  void *handle = NULL;
  int status = native.from_interface[cuda](&desc, layout, NULL, NULL, &handle);
  if (status != 0) return fail(status);
  return adopt(native.tensor, handle, owner);
}

/* The floats of a tuple of at most TB_MAX_CHANNELS Python floats; 0 when it is not one. */
static int read_coefficients(PyObject *tuple, float *out, Py_ssize_t *count) {
  if (!PyTuple_CheckExact(tuple)) return 0;
  Py_ssize_t n = PyTuple_Size(tuple);
  if (n < 1 || n > TB_MAX_CHANNELS) return 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PyTuple_GetItem(tuple, i);
    if (!PyFloat_CheckExact(item)) return 0;
    out[i] = (float)PyFloat_AsDouble(item);
  }
  *count = n;
  return 1;
}

/* A pair of ints (a device or a dtype); 0 when it is not one. */
static int read_pair(PyObject *tuple, int64_t *first, int64_t *second) {
  return PyTuple_CheckExact(tuple) && PyTuple_Size(tuple) == 2 && read_int64(PyTuple_GetItem(tuple, 0), first) &&
         read_int64(PyTuple_GetItem(tuple, 1), second);
}

/* A dtype given as (code, bits), each a byte (lanes 1); 0 when it is not one (the library then
 * judges whether it is supported). */
static int read_dtype(PyObject *tuple, TbDataType *dtype) {
  int64_t code, bits;
  if (!read_pair(tuple, &code, &bits) || code < 0 || code > 255 || bits < 0 || bits > 255) return 0;
  *dtype = (TbDataType){(uint8_t)code, (uint8_t)bits, 1};
  return 1;
}

/* convert_new(src, layout, (code, bits), scale, offset, stream): a new Tensor of src converted
 * (y = x * scale[c] + offset[c]) to the dtype, in layout (bytes or None), allocated ordered on
 * stream; scale and offset are tuples of floats of equal length. NotImplemented when src or an
 * argument needs the Python path. */
static PyObject *convert_new(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *src, *layout_object, *dtype_object, *scale_object, *offset_object, *stream_object;
  if (not_ready() || !PyArg_UnpackTuple(args, "convert_new", 6, 6, &src, &layout_object, &dtype_object,
                                        &scale_object, &offset_object, &stream_object))
    return NULL;
  const char *layout;
  void *stream;
  if (layout_of(layout_object, &layout) < 0 || pointer_of(stream_object, &stream) < 0) return NULL;
  float scale[TB_MAX_CHANNELS], offset[TB_MAX_CHANNELS];
  Py_ssize_t scales, offsets;
  TbDataType dtype;
  int plain = read_dtype(dtype_object, &dtype) && read_coefficients(scale_object, scale, &scales) &&
              read_coefficients(offset_object, offset, &offsets) && scales == offsets;
  void *src_handle, *borrowed = NULL;
  int found = plain ? operand(src, &src_handle, &borrowed) : 0;
  if (found <= 0) {
    if (found < 0) return NULL;
    Py_RETURN_NOTIMPLEMENTED;
  }
  void *out = NULL;
  int status = native.convert_new(src_handle, layout, dtype, scale, offset, (int32_t)scales, stream, &out);
  if (borrowed != NULL) native.release(borrowed);
  if (status != 0) return fail(status);
  return adopt(native.tensor, out, NULL);
}

/* alloc(shape, (device_type, device_id), (code, bits), layout, row_alignment, stream): a new
 * Tensor owning memory (tb_tensor_alloc, or tb_tensor_alloc_async on `stream` when it is not
 * None); NotImplemented when an argument is not of the plain form read here. */
static PyObject *alloc(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *shape_object, *device_object, *dtype_object, *layout_object, *alignment_object, *stream_object;
  if (not_ready() || !PyArg_UnpackTuple(args, "alloc", 6, 6, &shape_object, &device_object, &dtype_object,
                                        &layout_object, &alignment_object, &stream_object))
    return NULL;
  int64_t shape[TB_MAX_RANK], device_type, device_id, alignment;
  TbDataType dtype;
  Py_ssize_t rank;
  const char *layout;
  void *stream;
  if (layout_of(layout_object, &layout) < 0 || pointer_of(stream_object, &stream) < 0) return NULL;
  if (!read_extents(shape_object, shape, &rank) || !read_pair(device_object, &device_type, &device_id) ||
      !read_dtype(dtype_object, &dtype) || !read_int64(alignment_object, &alignment) ||
      device_type < INT32_MIN || device_type > INT32_MAX || device_id < INT32_MIN || device_id > INT32_MAX) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  TbDevice device = {(int32_t)device_type, (int32_t)device_id};
  void *out = NULL;
  int status = stream_object == Py_None
                   ? native.alloc(device, dtype, (int32_t)rank, shape, layout, alignment, &out)
                   : native.alloc_async(device, dtype, (int32_t)rank, shape, layout, alignment, stream, &out);
  if (status != 0) return fail(status);
  return adopt(native.tensor, out, NULL);
}

/* The address of library function `name` in the dict `functions`; NULL with an exception. */
static void *function_address(PyObject *functions, const char *name) {
  PyObject *number = PyDict_GetItemString(functions, name);
  if (number == NULL) {
    PyErr_Format(PyExc_KeyError, "init: no address for %s", name);
    return NULL;
  }
  void *address = PyLong_AsVoidPtr(number);
  if (address == NULL && !PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "init: %s is NULL", name);
  return address;
}

/* init(functions, tensor_type, raise_for, api_by_type): `functions` maps each library function
 * this module calls (FUNCTIONS below) to its address. */
static PyObject *init(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *functions, *tensor_type, *raise_for, *api_by_type;
  if (!PyArg_UnpackTuple(args, "init", 4, 4, &functions, &tensor_type, &raise_for, &api_by_type)) return NULL;
  if (!PyDict_Check(functions) || !PyDict_Check(api_by_type) || !PyCallable_Check(raise_for)) {
    PyErr_SetString(PyExc_TypeError, "init: functions and api_by_type are dicts, raise_for is callable");
    return NULL;
  }
  if (!PyType_Check(tensor_type) || !PyType_IsSubtype((PyTypeObject *)tensor_type, tensor_base)) {
    PyErr_SetString(PyExc_TypeError, "init: tensor_type must subclass TensorBase");
    return NULL;
  }
  static const char *const FUNCTIONS[] = {
      "tb_tensor_from_exchange_api", "tb_tensor_from_exchange_api_borrowed", "tb_tensor_release",
      "tb_reformat", "tb_copy", "tb_reformat_new", "tb_tensor_from_array_interface",
      "tb_tensor_from_cuda_array_interface", "tb_tensor_info", "tb_tensor_sync", "tb_tensor_to_dlpack",
      "tb_tensor_to_dlpack_versioned_with_flags", "tb_tensor_to_array_interface",
      "tb_tensor_to_cuda_array_interface", "tb_convert_new", "tb_tensor_alloc", "tb_tensor_alloc_async",
      "tb_tensor_permute", "tb_tensor_with_layout", "tb_tensor_select", "tb_tensor_slice", "tb_tensor_wrap",
  };
  void *addresses[sizeof FUNCTIONS / sizeof FUNCTIONS[0]];
  for (size_t i = 0; i < sizeof FUNCTIONS / sizeof FUNCTIONS[0]; i++) {
    addresses[i] = function_address(functions, FUNCTIONS[i]);
    if (addresses[i] == NULL) return NULL;
  }
  native.import_owned = (ImportFn)addresses[0];
  native.import_borrowed = (ImportFn)addresses[1];
  native.release = (ReleaseFn)addresses[2];
  native.into[INTO_REFORMAT] = (IntoFn)addresses[3];
  native.into[INTO_COPY] = (IntoFn)addresses[4];
  native.reformat_new = (NewFn)addresses[5];
  native.from_interface[0] = (InterfaceFn)addresses[6];
  native.from_interface[1] = (InterfaceFn)addresses[7];
  native.info = (InfoFn)addresses[8];
  native.sync = (SyncFn)addresses[9];
  native.to_dlpack = (ExportFn)addresses[10];
  native.to_dlpack_versioned = (ExportVersionedFn)addresses[11];
  native.to_interface[0] = (DescribeFn)addresses[12];
  native.to_interface[1] = (DescribeFn)addresses[13];
  native.convert_new = (ConvertNewFn)addresses[14];
  native.alloc = (AllocFn)addresses[15];
  native.alloc_async = (AllocAsyncFn)addresses[16];
  native.relabel[RELABEL_PERMUTE] = (RelabelFn)addresses[17];
  native.relabel[RELABEL_WITH_LAYOUT] = (RelabelFn)addresses[18];
  native.select = (SelectFn)addresses[19];
  native.slice = (SliceFn)addresses[20];
  native.wrap = (WrapFn)addresses[21];
  replace(&native.raise_for, raise_for);
  replace(&native.api_by_type, api_by_type);
  replace((PyObject **)&native.tensor, tensor_type);
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"init", init, METH_VARARGS,
     "init(functions, tensor_type, raise_for, api_by_type): connects the module to the library."},
    {"import_owned", import_owned, METH_VARARGS,
     "import_owned(api, obj, layout): a Tensor owning a DLPack tensor of obj (exchange API)."},
    {"into", into, METH_VARARGS,
     "into(which, dst, src, stream): reformat (0) or copy (1) src into dst; NotImplemented when an "
     "operand needs the Python path."},
    {"import_interface", import_interface, METH_VARARGS,
     "import_interface(cuda, interface, layout, owner): a Tensor over an interface dict's memory; "
     "NotImplemented when the dict needs the Python reader."},
    {"alloc", alloc, METH_VARARGS,
     "alloc(shape, (device_type, device_id), (code, bits), layout, row_alignment, stream): a new Tensor "
     "owning memory; NotImplemented when an argument needs the Python path."},
    {"convert_new", convert_new, METH_VARARGS,
     "convert_new(src, layout, (code, bits), scale, offset, stream): a new converted Tensor; "
     "NotImplemented when an argument needs the Python path."},
    {"reformat_new", reformat_new, METH_VARARGS,
     "reformat_new(src, layout, stream): a new Tensor of src in layout; NotImplemented when src "
     "needs the Python path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tensorbridge._native",
    "The compiled fast path of tensorbridge's Python package (optional; see _native.c).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
  struct {
    PyObject **key;
    const char *name;
  } keys[] = {{&key_data, "data"},       {&key_shape, "shape"},   {&key_typestr, "typestr"},
              {&key_strides, "strides"}, {&key_version, "version"}, {&key_stream, "stream"},
              {&key_mask, "mask"}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (*keys[i].key == NULL && (*keys[i].key = PyUnicode_InternFromString(keys[i].name)) == NULL) return NULL;
  }
  PyObject *module = PyModule_Create(&module_def);
  if (module == NULL) return NULL;
  tensor_base = (PyTypeObject *)PyType_FromSpec(&base_spec);
  if (tensor_base == NULL || PyModule_AddObject(module, "TensorBase", (PyObject *)tensor_base) < 0) {
    Py_XDECREF(tensor_base);
    Py_DECREF(module);
    return NULL;
  }
  Py_INCREF(tensor_base); /* the module's reference was stolen; this file keeps its own */
  if (PyModule_AddIntConstant(module, "API_VERSION", NATIVE_API_VERSION) < 0) {
    Py_DECREF(module);
    return NULL;
  }
  return module;
}
