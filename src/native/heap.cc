// Asks V8 to start a full collection in the background (incremental marking on its helper
// threads, a short pause to finish): what a build does between the walk and the bootstrap's
// layout, instead of a full collection that stops the main thread (src/builder/create.ts).
#include <node_api.h>
#include <v8.h>

extern "C" napi_value memory_pressure(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return nullptr;
}
