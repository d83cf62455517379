"""KID-PPG (Kechris et al., 2024) on fastbp: the published heart-rate model, its pretrained
weights and its PPG-DaLiA demo recording, read from the authors' pip wheel `kid-ppg` 0.0.4.

material        find or download the wheel; read the demo windows and the Keras weights from it
keras_weights   the Keras weights as a PyTorch-layout state_dict (every layout change in one place)
architecture    the network's hyper-parameters and the state_dict it expects
pipeline        z-scoring, temporal pairs, spectral-peak baseline, MAE
adaptive_filter the per-recording motion-artifact filter, fitted with fastbp
network         the network on fastbp.nn: build_network(state_dict), predict, the Gaussian NLL
finetune        Adam on the first half of a recording, the split that keeps the second unseen
plot            the heart-rate figure (matplotlib, optional)
"""
