"""Small DeepMind WideResNet model cases for tests/fixtures (a fresh clone tests the architecture
without ../shared): the `model` kind of the fixtures' README, made by the shared generator
(fixtures/gen_fixtures.py's model_case) with RobustBench's DMWideResNet definition, as
fixtures-robustbench/gen_rb_fixtures.py does, at depth 10 so that the files stay small.

Usage: python scripts/gen_dm_fixtures.py SHARED_DIR OUT_DIR   (SHARED_DIR holds fixtures/ and
fixtures-robustbench/; needs torch, safetensors and `pip install --no-deps robustbench==1.1.1`)"""
import importlib.util, os, sys

shared, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(shared, "fixtures"))
import gen_fixtures as G
import torch

root = os.path.dirname(importlib.util.find_spec("robustbench").origin)
spec = importlib.util.spec_from_file_location("dm_wide_resnet", f"{root}/model_zoo/architectures/dm_wide_resnet.py")
dm = importlib.util.module_from_spec(spec); spec.loader.exec_module(dm)
os.makedirs(out, exist_ok=True)
for name, depth, width, act, classes, seed in [("model_dm_wrn10_1_swish", 10, 1, "swish", 10, 41), ("model_dm_wrn10_1_relu_c100", 10, 1, "relu", 100, 43)]:
    torch.manual_seed(seed)
    mean, std = (dm.CIFAR10_MEAN, dm.CIFAR10_STD) if classes == 10 else (dm.CIFAR100_MEAN, dm.CIFAR100_STD)
    m = dm.DMWideResNet(num_classes=classes, depth=depth, width=width, activation_fn=dm.Swish if act == "swish" else torch.nn.ReLU, mean=mean, std=std)
    cfg = {"depth": depth, "width": width, "activation": act, "classes": classes, "mean": list(mean), "std": list(std)}
    G.model_case(out, name, "dm_wide_resnet", m, (4, 3, 32, 32), seed, classes=classes, config=cfg)
    print(name)
