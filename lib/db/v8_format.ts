/** Constants of V8's serialization format as node:v8 writes it, shared by its reader and writer here. */

/** node:v8's host object type indexes of the typed arrays remise stores. */
export const HOST_UINT8_ARRAY = 1;
export const HOST_BUFFER = 10;

// Tags of V8's serialization format (v8/src/objects/value-serializer.cc).
export const TAG = {
  version: 0xff,
  padding: 0x00,
  verifyObjectCount: 0x3f, // ?
  undefined: 0x5f, // _
  null: 0x30, // 0
  true: 0x54, // T
  false: 0x46, // F
  int32: 0x49, // I
  uint32: 0x55, // U
  double: 0x4e, // N
  utf8String: 0x53, // S
  oneByteString: 0x22, // "
  twoByteString: 0x63, // c
  beginObject: 0x6f, // o
  endObject: 0x7b, // {
  beginDenseArray: 0x41, // A
  endDenseArray: 0x24, // $
  beginSparseArray: 0x61, // a
  endSparseArray: 0x40, // @
  hostObject: 0x5c, // \
} as const;
