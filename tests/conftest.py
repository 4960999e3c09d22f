import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# every converter must build the layout the plan decided (emit raises on a deviation instead of
# moving the tensor): the whole suite checks the plan's layout rules against the converters
os.environ.setdefault("KONNX_STRICT_PLAN", "1")
