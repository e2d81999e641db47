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
typedef int (*InterfaceFn)(const TbArrayInterface *desc, const char *layout, TbCleanupFn keep_alive,
                           void *keep_alive_context, void **out);

/* The library functions this module calls (init() fills them) and the Python objects it uses. */
static struct {
  ImportFn import_owned;
  ImportFn import_borrowed;
  ReleaseFn release;
  IntoFn into[2]; /* INTO_REFORMAT, INTO_COPY */
  NewFn reformat_new;
  InterfaceFn from_interface[2]; /* [0] NumPy array interface, [1] CUDA Array Interface */
  PyObject *raise_for;     /* raise_for(status): raises the library's error for a status */
  PyObject *api_by_type;   /* dict: type -> DLPackExchangeAPI* as an int (0: none) */
  PyTypeObject *tensor;    /* tensorbridge.Tensor, a subclass of TensorBase */
} native;

enum { INTO_REFORMAT = 0, INTO_COPY = 1 };

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

static PyMethodDef base_methods[] = {
    {"_adopt", base_adopt, METH_VARARGS | METH_CLASS,
     "_adopt(handle, owner=None): a tensor owning a library handle (one reference)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot base_slots[] = {
    {Py_tp_doc, "A library tensor handle owned by a Python object (released with it)."},
    {Py_tp_dealloc, base_dealloc},
    {Py_tp_traverse, base_traverse},
    {Py_tp_clear, base_clear},
    {Py_tp_members, base_members},
    {Py_tp_methods, base_methods},
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
    Py_INCREF(Py_NotImplemented);
    return Py_NotImplemented;
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
    Py_INCREF(Py_NotImplemented);
    return Py_NotImplemented;
  }
  void *handle = NULL;
  int status = native.from_interface[cuda](&desc, layout, NULL, NULL, &handle);
  if (status != 0) return fail(status);
  return adopt(native.tensor, handle, owner);
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
      "tb_tensor_from_cuda_array_interface",
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
  return module;
}
